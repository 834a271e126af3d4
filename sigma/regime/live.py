"""The adaptive layer as `sigma up` runs it: one call builds the hook with its sinks, its state
store, the walk-forward gate on parameter changes (`SIGMA_ADAPTIVE_TEST_BARS`), the probation
time out (`SIGMA_ADAPTIVE_PROBATION_BARS`) and the news handler, and the news poller when
feeds or a drop folder are configured.

    adaptive = build_live_adaptive(settings, sessions, notifier)
    bot = TradingBot(..., adaptive=adaptive.hook)
    tasks.append(asyncio.create_task(adaptive.run_news(stop)))   # a no-op without feeds
    create_api(..., news=adaptive.news)                          # POST /api/news feeds the same

At start the state store resumes what the loop learnt before (verdicts, blocked regimes,
detector thresholds, feedback trades) and the news store re-scores the items recent enough to
still hold a risk window.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sigma.config import Settings
from sigma.notify.service import NotificationService
from sigma.regime.adjuster import ParamAdjuster
from sigma.regime.feedback import QualityAssessment, QualityConfig
from sigma.regime.hook import AdaptiveHook
from sigma.regime.journal import AdaptiveSink
from sigma.regime.loop import AdaptiveLoop
from sigma.regime.news import NewsHandler
from sigma.regime.news_feed import NewsFeedPoller, NewsStore
from sigma.regime.presets import BUILTIN_PRESETS
from sigma.regime.sinks import AlertSink, StoreSink, WrittenBehind
from sigma.regime.state import WriteBehindStateStore
from sigma.regime.tester import StrategyTester, WalkForwardConfig
from sigma.store.handles import SessionFactory
from sigma.store.write_behind import WriteBehind

__all__ = ["LiveAdaptive", "build_live_adaptive"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class LiveAdaptive:
    """The hook for the bot, the news handler it reads, the poller feeding it, and the
    writer that stores the hook's state and decisions behind the price loop."""

    hook: AdaptiveHook
    news: NewsHandler
    poller: NewsFeedPoller | None
    writer: WriteBehind

    async def run_news(self, stop: asyncio.Event) -> None:
        """Poll the configured feeds until `stop` (returns at once without feeds)."""
        if self.poller is not None:
            await self.poller.run(stop)

    def close(self) -> None:
        """Finish the writes the hook queued (after the bot stopped)."""
        self.writer.close()


def build_live_adaptive(
    settings: Settings,
    sessions: SessionFactory,
    notifier: NotificationService,
    *,
    now: datetime | None = None,
) -> LiveAdaptive:
    """The live adaptive layer from settings (see the module docstring)."""
    news = NewsHandler(symbol_keywords=settings.regime.news_keywords)
    store = NewsStore(sessions)
    try:
        restored = store.restore(news, now or datetime.now(UTC))
    except Exception:
        log.exception("could not restore recent news; starting without")
    else:
        if restored:
            log.info("restored %d recent news items", len(restored))
    # The loop's state and decisions are written behind the price loop, in the order taken.
    writer = WriteBehind("the adaptive state")
    sinks: list[AdaptiveSink] = [
        WrittenBehind(StoreSink(sessions, mode=settings.trading.mode), writer),
        AlertSink(notifier),
    ]
    quality = QualityAssessment(
        QualityConfig(probation_bars=settings.regime.adaptive_probation_bars)
    )
    loop = AdaptiveLoop(ParamAdjuster(BUILTIN_PRESETS), quality=quality, news=news)
    tester = None
    if settings.regime.adaptive_test_bars:
        tester = StrategyTester(WalkForwardConfig(lookback=settings.regime.adaptive_test_bars))
    state = WriteBehindStateStore(sessions, writer)
    hook = AdaptiveHook(loop, sinks=sinks, state=state, tester=tester)
    poller = None
    if settings.regime.news_feed_urls or settings.regime.news_drop_dir is not None:
        poller = NewsFeedPoller(
            settings.regime.news_feed_urls,
            news,
            drop_dir=settings.regime.news_drop_dir,
            store=store,
            interval=settings.regime.news_poll_seconds,
        )
    return LiveAdaptive(hook, news, poller, writer)
