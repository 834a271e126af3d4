"""The adaptive layer: regime detection, parameter adjustment, feedback and quality, trend
scanning, news and commentary (the seed's RegimeDetector -> ParamAdjuster -> strategy_param
loop). `AdaptiveHook` is what the bot and the backtests call once per closed bar."""

from sigma.regime.adjuster import AdjusterConfig, ParamAdjuster, ParamUpdate, RegimePresets
from sigma.regime.backtest import (
    AdaptiveComparison,
    AdaptiveRun,
    build_hook,
    compare_adaptive,
    run_adaptive_backtest,
)
from sigma.regime.commentary import CommentaryModule
from sigma.regime.detector import (
    DetectorConfig,
    Regime,
    RegimeDetector,
    RegimeModel,
    RegimeState,
    balanced_accuracy,
    confusion_matrix,
    detect_frame,
)
from sigma.regime.feedback import (
    FeedbackMechanism,
    QualityAssessment,
    QualityConfig,
    QualityVerdict,
    TradeOutcome,
)
from sigma.regime.hook import AdaptiveHook
from sigma.regime.journal import AdaptiveSink
from sigma.regime.loop import AdaptiveLoop, LoopDecision, LoopStep
from sigma.regime.news import NewsConfig, NewsEvent, NewsHandler, NewsItem
from sigma.regime.presets import BUILTIN_PRESETS, fit_presets
from sigma.regime.sinks import AlertSink, StoreSink
from sigma.regime.trend import TrendReading, TrendScanner, save_trends

__all__ = [
    "BUILTIN_PRESETS",
    "AdaptiveComparison",
    "AdaptiveHook",
    "AdaptiveLoop",
    "AdaptiveRun",
    "AdaptiveSink",
    "AdjusterConfig",
    "AlertSink",
    "CommentaryModule",
    "DetectorConfig",
    "FeedbackMechanism",
    "LoopDecision",
    "LoopStep",
    "NewsConfig",
    "NewsEvent",
    "NewsHandler",
    "NewsItem",
    "ParamAdjuster",
    "ParamUpdate",
    "QualityAssessment",
    "QualityConfig",
    "QualityVerdict",
    "Regime",
    "RegimeDetector",
    "RegimeModel",
    "RegimePresets",
    "RegimeState",
    "StoreSink",
    "TradeOutcome",
    "TrendReading",
    "TrendScanner",
    "balanced_accuracy",
    "build_hook",
    "compare_adaptive",
    "confusion_matrix",
    "detect_frame",
    "fit_presets",
    "run_adaptive_backtest",
    "save_trends",
]
