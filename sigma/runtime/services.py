"""The long-running services of one process (`Services`): market feed, price client,
TradingBot, OrderWorker, SimRunner, scheduler and API, wired from what `sigma.bootstrap` built
(the `App`) onto one bus (`sigma up`), or any subset of them (one process per component with
Redis and RabbitMQ). Supervision is `sigma.runtime.supervisor`'s; metrics and alerts,
`sigma.runtime.telemetry`'s.

Shutdown order matters for "nothing half-written": prices stop first, then the bot, then the
worker finishes the orders it holds (the queue's `stop` waits for in-flight handlers), then the
simulations are closed with their reports, then logs and connections.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from sigma.bootstrap import App
from sigma.bus.base import QUEUE_ORDERS, WorkQueue
from sigma.bus.cache import CachingPubSub
from sigma.config.groups import RiskSettings
from sigma.engine.engine import EngineConfig
from sigma.engine.margin import AccountType, MarginModel
from sigma.execution.broker import Capability, settling
from sigma.execution.executor import OrderExecutor
from sigma.execution.follower import FollowerSettings
from sigma.execution.worker import OrderWorker
from sigma.feeds.ticks import decode_tick
from sigma.feeds.ws_client import FeedOptions, PriceClient, ReconnectingFeed
from sigma.feeds.ws_server import MarketServer
from sigma.notify import NotificationService
from sigma.ops.action_log import ActionLogger
from sigma.ops.metrics import Metrics
from sigma.regime import AdaptiveHook
from sigma.regime.live import LiveAdaptive, build_live_adaptive
from sigma.risk.anomaly import AnomalyDetector, ReferencePrice
from sigma.risk.feed_health import AlertSink, FeedHealth
from sigma.risk.limits import RiskLimits, RiskManager
from sigma.runtime.bot import TradingBot
from sigma.runtime.catch_up import FeedbackCatchUp
from sigma.runtime.control import BotControl
from sigma.runtime.market import builtin_market
from sigma.runtime.ml_gates import LiveGates
from sigma.runtime.prices import stored_last_prices, venue_last_prices
from sigma.runtime.protection import ProtectionKeeper
from sigma.runtime.recorder import RecorderService, build_recorder
from sigma.runtime.restore import restore_bot
from sigma.runtime.sim import SimRunner
from sigma.runtime.supervisor import Supervisor, finish, until_subscribed, watch
from sigma.runtime.tasks import decode_or_none
from sigma.runtime.telemetry import PriceFilterGauges, RegimeGauges, Telemetry
from sigma.runtime.wiring import job_runtime
from sigma.runtime.worker_tasks import WorkerTasks
from sigma.scheduler.guard import watch as watch_scheduler
from sigma.scheduler.jobs import start_scheduler
from sigma.scheduler.service import SchedulerService
from sigma.store import heartbeats
from sigma.store.control import KILL_SWITCH, get_flag
from sigma.store.handles import SessionFactory
from sigma.store.outage import DatabaseUnavailable
from sigma.store.params import get_active_params
from sigma.store.protection import ProtectionStore
from sigma.store.restart import StoredPrice
from sigma.store.risk_state import RiskStateStore
from sigma.strategies import indicators
from sigma.strategies.base import Strategy

if TYPE_CHECKING:
    from sigma.venues.emulator.server import VenueServer

log = logging.getLogger(__name__)


class StartupError(ValueError):
    """What is configured or stored cannot run; the message says what and how to fix it."""


COMPONENTS = ("market", "prices", "bot", "recorder", "worker", "sim", "api", "scheduler")
# Started only when named (`sigma up --only venue,...`): the local exchange of `sigma venue`.
OPTIONAL_COMPONENTS = ("venue",)
KNOWN_COMPONENTS = COMPONENTS + OPTIONAL_COMPONENTS


@dataclass
class CachedFlag:
    """Reads a control flag at most every `ttl` seconds (the risk check runs per order), on
    read-only `sessions`."""

    sessions: SessionFactory
    name: str
    ttl: float = 1.0
    _value: bool = False
    _read_at: float = field(default=-1e18)

    def __call__(self) -> bool:
        now = time.monotonic()
        if now - self._read_at >= self.ttl:
            try:
                with self.sessions() as session:
                    self._value = get_flag(session, self.name).enabled
            except Exception:
                # Cannot tell: assume halted; trading blind is worse than pausing.
                log.exception("could not read the %s flag; treating it as on", self.name)
                self._value = True
            self._read_at = now
        return self._value


def risk_limits(risk: RiskSettings) -> RiskLimits:
    """The configured limits."""
    return RiskLimits(
        max_order_notional=risk.max_order_notional,
        max_position_notional=risk.max_position_notional,
        max_open_orders=risk.max_open_orders,
        max_daily_loss=risk.max_daily_loss,
        max_drawdown=risk.max_drawdown,
    )


#: serves the API of a running `Services` until `stop` (sigma.api.server.serve_embedded)
ServeApi = Callable[["Services", asyncio.Event], Awaitable[None]]


class Services:
    """The chosen components of one process: started in order, supervised until `stop` is
    set, then stopped in order."""

    def __init__(
        self,
        app: App,
        components: Iterable[str] = COMPONENTS,
        serve_api: ServeApi | None = None,
    ) -> None:
        chosen = set(components)
        unknown = chosen - set(KNOWN_COMPONENTS)
        if unknown:
            raise ValueError(
                f"unknown component(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(KNOWN_COMPONENTS)}"
            )
        if "api" in chosen and serve_api is None:
            raise ValueError(
                "the api component needs `serve_api` (sigma.api.server.serve_embedded)"
            )
        # The API sits above the application layer (its routes call `sigma.runtime.operator`),
        # so it is handed in rather than imported.
        self.serve_api = serve_api
        try:
            app.open_db()  # the notifier and the action log below write to it
        except DatabaseUnavailable as exc:
            raise StartupError(str(exc)) from None
        self.app = app
        self.components = chosen
        s = app.settings
        self.pubsub: CachingPubSub = app.pubsub()
        self.queue: WorkQueue = app.work_queue()
        self.metrics = Metrics()
        self.notifier: NotificationService = app.notifier(self.pubsub)
        self.actions = ActionLogger(app.sessions, source="bot", mode=s.trading.mode, notifier=None)
        self.telemetry = Telemetry(self.metrics, self.actions, self.notifier)
        # What the price filter believes per symbol: alerts, metrics, and the bot's entry pause.
        self.feed_health = FeedHealth(
            sinks=[PriceFilterGauges(self.metrics), AlertSink(self.telemetry.alert)]
        )
        self.market: MarketServer | None = None
        self.venue: VenueServer | None = None
        self.trading_venue = app.venue
        self.prices: ReconnectingFeed | None = None
        self.bot: TradingBot | None = None
        self.control: BotControl | None = None
        self.risk_state: RiskStateStore | None = None
        self.protection: ProtectionStore | None = None
        self.recorder: RecorderService | None = None
        self.worker: OrderWorker | None = None
        self.worker_tasks: WorkerTasks | None = None
        self.sim: SimRunner | None = None
        self.api_url: str | None = None
        self.scheduler: SchedulerService | None = None
        self.adaptive: LiveAdaptive | None = None
        self.gates: LiveGates | None = None
        self._venue_prices: dict[str, StoredPrice] = {}
        self.supervisor = Supervisor(partial(self.notifier.notify, "critical", "sigma"))
        self.ready = asyncio.Event()

    # --- building blocks -------------------------------------------------------------------
    def strategies(
        self, names: Iterable[str] | None = None
    ) -> list[tuple[Callable[[], Strategy], str]]:
        """A factory per (strategy, symbol), with its active parameters: the live strategies,
        or the strategies `names`."""
        s = self.app.settings
        out: list[tuple[Callable[[], Strategy], str]] = []
        with self.app.sessions() as session:
            for name in s.trading.live_strategies if names is None else names:
                cls = self.app.strategies.get(name)
                for symbol in s.trading.symbols:
                    params = get_active_params(session, name, symbol) or {}
                    try:
                        cls(**params)
                    except ValueError as exc:
                        # Trading on defaults nobody chose would be worse than not starting.
                        raise StartupError(
                            f"the stored parameters of {name} on {symbol} are not valid for "
                            f"the strategy: {exc}; store a valid set with "
                            f"PUT /api/params/{name}/{symbol} (`sigma api` serves it alone)"
                        ) from None
                    out.append((_factory(cls, params), symbol))
        return out

    # --- run --------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Start the components, serve until `stop`, then shut down in order."""
        s = self.app.settings
        self.app.db  # noqa: B018 - migrate before any component touches the database
        await asyncio.to_thread(load_compiled, self.components)
        await self.actions.start()
        stack = contextlib.AsyncExitStack()
        tasks: dict[str, asyncio.Task[None]] = {}
        supervise = partial(self.supervisor.start, stop=stop)
        try:
            if s.process.metrics_port is not None:
                # Processes without the API (bot, worker, sim) are scraped here.
                stack.callback(self.metrics.serve(s.process.metrics_port).close)
            if "venue" in self.components:
                from sigma.venues.emulator.config import build_config
                from sigma.venues.emulator.server import VenueServer

                server = VenueServer(build_config(s.venue.venue_config, [], None, {}))
                self.venue = await stack.enter_async_context(server.serve())
            feed_url = s.feed.feed_url
            if "market" in self.components and feed_url is None and self.trading_venue is None:
                # A restart continues in wall-clock time, after any price already stored.
                market = await asyncio.to_thread(
                    builtin_market, self.app.sessions, self.app.settings
                )
                self.market = await stack.enter_async_context(
                    MarketServer("127.0.0.1", 0, market).serve()
                )
                feed_url = self.market.url
            if "prices" in self.components:
                if self.trading_venue is not None:
                    self._venue_prices = await self._venue_last_prices()
                self.prices = self._price_source(feed_url)
                self.metrics.count_from("feed", self.prices.counts)
                self.metrics.frames_dropped.read = lambda: (
                    self.prices.cleaner.drops if self.prices else {}
                )
                tasks["prices"] = supervise("prices", self.prices.run)
            if s.regime.ml_gate and self.components & {"bot", "sim"}:
                self.gates = LiveGates(
                    self.app.sessions,
                    s.trading.symbols,
                    s.regime.ml_gate_threshold,
                    actions=self.actions,
                    metrics=self.metrics,
                )
                await asyncio.to_thread(self.gates.load)
                tasks["ml_gate"] = supervise("ml_gate", partial(self.gates.run, stop))
            if "bot" in self.components:
                await self.queue.prepare(QUEUE_ORDERS)
                self.bot = self._bot(await self._live_config())
                self.metrics.count_from("bot", self.bot.counters.totals)
                tasks["bot"] = supervise("bot", partial(self.bot.run, self.pubsub, stop))
                self.control = BotControl(self.bot, self.app.sessions, self.actions)
                tasks["control"] = supervise(
                    "control", partial(self.control.run, self.pubsub, stop)
                )
                tasks["account"] = supervise(
                    "account",
                    partial(
                        self.telemetry.account_gauges,
                        self.bot,
                        s.trading.mode,
                        s.trading.initial_cash,
                        stop,
                    ),
                )
                if self.adaptive is not None and self.adaptive.poller is not None:
                    tasks["news"] = supervise("news", partial(self.adaptive.run_news, stop))
            if "recorder" in self.components:
                # Rejections are counted once, by the bot, which decodes the same messages.
                self.recorder = await asyncio.to_thread(
                    build_recorder, self.app.db, self.app.settings, decode_or_none
                )
                self.metrics.count_from("recorder", self.recorder.recorder.totals)
                tasks["recorder"] = supervise(
                    "recorder", partial(self.recorder.run, self.pubsub, stop)
                )
            if "worker" in self.components:
                self.worker = OrderWorker(
                    self.app.sessions,
                    self.app.broker(),
                    self.pubsub,
                    on_alert=self.telemetry.alert,
                    mode=s.trading.mode,
                    symbols=s.trading.symbols,
                    follow=FollowerSettings(
                        poll_seconds=s.worker.order_poll_seconds,
                        stream_poll_seconds=s.worker.order_stream_poll_seconds,
                        requests_per_second=s.worker.order_requests_per_second,
                        order_timeout=s.worker.order_timeout_seconds,
                    ),
                )
                await self.worker.db.warm()
                self.worker_tasks = WorkerTasks(
                    self.worker,
                    self.queue,
                    self.pubsub,
                    self.metrics,
                    self.app.sessions,
                    s.worker.worker_name or heartbeats.default_worker_name(),
                )
                tasks["worker"] = supervise(
                    "worker",
                    partial(
                        self.worker_tasks.consume,
                        s.trading.mode,
                        s.worker.worker_prefetch,
                        stop,
                    ),
                )
                tasks["resting"] = supervise(
                    "resting", partial(self.worker_tasks.resting_orders, stop)
                )
                tasks["follower"] = supervise(
                    "follower", partial(self.worker.follower.run, s.trading.mode, stop)
                )
                tasks["heartbeat"] = supervise(
                    "heartbeat", partial(self.worker_tasks.heartbeat, stop)
                )
                tasks["reconcile"] = supervise(
                    "reconcile",
                    partial(
                        self.worker.reconcile_every,
                        s.trading.mode,
                        s.worker.reconcile_seconds,
                        stop,
                    ),
                )
            if "sim" in self.components:
                # Every strategy is paper-traded, so the operator can compare what the live
                # ones do with what the others would have done.
                self.sim = SimRunner(
                    self.app.sessions,
                    self.strategies(self.app.strategies.names),
                    timeframe=timedelta(seconds=s.trading.bar_seconds),
                    config=self._engine_config(),
                    run_bars=s.trading.sim_run_bars,
                    report_dir=s.process.var_dir / "sims",
                )
                self.sim.start()
                tasks["sim"] = supervise(
                    "sim", partial(self.sim.run, self.pubsub, decode_tick, stop)
                )
            if "scheduler" in self.components:
                self.scheduler = self._start_scheduler()
                tasks["scheduler"] = supervise(
                    "scheduler", partial(watch_scheduler, self.scheduler.scheduler, stop)
                )
            if "api" in self.components:
                assert self.serve_api is not None  # checked when the Services was made
                tasks["api"] = supervise("api", partial(self.serve_api, self, stop))
            await until_subscribed(self._subscriptions(), tasks, stop)
            self.ready.set()
            await watch(tasks, stop, partial(self.notifier.notify, "critical", "sigma"))
        finally:
            await self._shutdown(tasks)
            await stack.aclose()

    def _subscriptions(self) -> list[asyncio.Event]:
        """What says each running consumer listens (Redis Pub/Sub keeps no message for a
        late subscriber), and the worker has reconciled and takes orders."""
        consumers = (self.bot, self.control, self.recorder, self.sim)
        events = [c.subscribed for c in consumers if c is not None]
        worker_tasks = self.worker_tasks
        if worker_tasks is not None:
            events.append(worker_tasks.reconciled)
            if settling(worker_tasks.worker.broker) is not None:
                events.append(worker_tasks.resting_subscribed)
        return events

    async def _shutdown(self, tasks: dict[str, asyncio.Task[None]]) -> None:
        if self.prices is not None:
            await self.prices.stop()
        # The recorder writes what it still holds before the database connections go.
        for name in ("prices", "news", "control", "bot", "recorder"):
            await finish(tasks.pop(name, None))
        if self.risk_state is not None:
            await asyncio.to_thread(self.risk_state.close)
        if self.protection is not None:
            await asyncio.to_thread(self.protection.close)
        if self.adaptive is not None:
            await asyncio.to_thread(self.adaptive.close)
        if "worker" in tasks:
            if self.worker is not None:
                self.worker.stopping.set()  # an order waiting for the database is let go
            await self.queue.stop()  # in-flight orders finish and are acknowledged
        for name in ("account", "worker", "resting", "follower", "heartbeat", "sim", "api"):
            await finish(tasks.pop(name, None))
        await finish(tasks.pop("ml_gate", None))
        await finish(tasks.pop("scheduler", None))
        if self.worker is not None:
            await self.worker.close()
            await self.worker.broker.close()  # a venue's HTTP session
        if self.scheduler is not None:
            await asyncio.to_thread(self.scheduler.shutdown)
        if self.sim is not None:
            reports = await asyncio.to_thread(self.sim.finish)
            log.info("simulation reports: %s", {k: str(v) for k, v in reports.items()})
        await self.actions.aclose()
        await self.notifier.aclose()
        await self.queue.close()
        await self.pubsub.close()

    # --- components -------------------------------------------------------------------------
    def _engine_config(self) -> EngineConfig:
        s = self.app.settings
        return EngineConfig(
            initial_cash=s.trading.initial_cash,
            fill_model=self.app.fill_model,
            stake=s.trading.stake_fraction,
            entry_gate=None if self.gates is None else self.gates.sims,
            margin=MarginModel(
                AccountType(s.risk.margin_account),
                s.risk.margin_leverage,
                s.risk.margin_maintenance,
            ),
        )

    async def _live_config(self) -> EngineConfig:
        """The bot's engine config: its ML gate; on a venue, its instruments (lot step,
        minimums) and whether it can hold a short; else the paper config."""
        gate = None if self.gates is None else self.gates.bot
        config = replace(self._engine_config(), entry_gate=gate)
        if self.trading_venue is None:
            return config
        client = self.app.venue_client()
        try:
            instruments = await client.instruments()
        finally:
            await client.close()
        return replace(
            config,
            instruments=dict(instruments),
            can_short=Capability.SHORT in client.capabilities,
        )

    def _price_source(self, feed_url: str | None) -> ReconnectingFeed:
        """The configured venue's data client, else the price client on `feed_url`."""
        venue = self.trading_venue
        if venue is not None:
            from sigma.venues.factory import make_venue_data, venue_markets

            markets = venue_markets(venue.name, self.app.settings.trading.symbols, venue.markets)
            # The venue's ticker is fresher than what SIGMA stored before it stopped.
            known = {**self._last_prices(), **self._venue_prices}
            options = self._feed_options(venue.name, known.get)
            return make_venue_data(venue.name, markets, venue.public_config, **options)
        if feed_url is None:
            raise ValueError("the price client needs SIGMA_FEED_URL or the market")
        # The wall-clock built-in market goes on from the last stored price; the accelerated
        # one replays the same seeded prices after a restart, so what was stored is no
        # reference for it.
        builtin = self.market is not None and feed_url == self.market.url
        replays = builtin and self.app.settings.feed.feed_speed != 1
        reference = None if replays else self._last_prices().get
        return PriceClient(
            feed_url,
            symbols=self.app.settings.trading.symbols,
            **self._feed_options(feed_url, reference),
        )

    async def _venue_last_prices(self) -> dict[str, StoredPrice]:
        """The venue's tickers: the price filter's reference for the first tick."""
        return await venue_last_prices(self.app.venue_client())

    def _last_prices(self) -> dict[str, StoredPrice]:
        """The stored prices: the price filter's reference for each feed's first tick."""
        return stored_last_prices(self.app.sessions, self.app.settings.trading.symbols)

    def _feed_options(self, source: str, reference: ReferencePrice | None = None) -> FeedOptions:
        """What every price feed is given: the price filter (judging each symbol's first tick
        against `reference`) and its health, the bus, metrics and the stale alert."""
        on_tick, on_stale, on_recovered = self.telemetry.feed_callbacks(source)
        return FeedOptions(
            detector=AnomalyDetector(reference=reference),
            health=self.feed_health,
            pubsub=self.pubsub,
            on_tick=on_tick,
            stale_after=self.app.settings.feed.feed_stale_seconds,
            on_stale=on_stale,
            on_recovered=on_recovered,
        )

    def _bot(self, config: EngineConfig | None = None) -> TradingBot:
        s = self.app.settings
        # The breakers' marks, and below the accounts, continue from the store: a restart
        # neither re-arms a halted bot nor starts flat.
        self.risk_state = RiskStateStore(self.app.sessions, s.trading.mode)
        risk = RiskManager(
            risk_limits(s.risk),
            kill_switch=CachedFlag(self.app.read_sessions, KILL_SWITCH),
            on_change=self.risk_state.save,
            entry_pause=self.feed_health.entry_pause,
        )
        risk.restore(self.risk_state.load())
        self.protection = ProtectionStore(self.app.sessions, s.trading.mode)
        bot = TradingBot(
            [(factory(), symbol) for factory, symbol in self.strategies()],
            timeframe=timedelta(seconds=s.trading.bar_seconds),
            config=config or self._engine_config(),
            risk=risk,
            executor=OrderExecutor(self.queue, mode=s.trading.mode),
            decode=partial(decode_or_none, rejected=self.telemetry.tick_rejected),
            on_decision=self.telemetry.on_decision,
            on_latency=self.metrics.tick_to_order.observe,
            on_fill_latency=self.metrics.order_to_fill.observe,
            adaptive=self._adaptive_hook() if s.regime.adaptive else None,
            protection=ProtectionKeeper(self.protection.save),
        )
        restore_bot(
            bot, self.app.sessions, s.trading.mode, timedelta(seconds=s.trading.bar_seconds)
        )
        bot.catch_up = FeedbackCatchUp(bot, self.app.sessions)
        return bot

    def _adaptive_hook(self) -> AdaptiveHook:
        self.adaptive = build_live_adaptive(self.app.settings, self.app.sessions, self.notifier)
        self.adaptive.hook.sinks.append(RegimeGauges(self.metrics))
        return self.adaptive.hook

    def _start_scheduler(self) -> SchedulerService:
        """The scheduled jobs; parameter changes they make reach the running strategies."""
        apply_params = partial(self._on_scheduled_params, asyncio.get_running_loop())
        return start_scheduler(
            job_runtime(self.app, metrics=self.metrics, apply_params=apply_params)
        )

    def _on_scheduled_params(
        self,
        loop: asyncio.AbstractEventLoop,
        strategy: str,
        symbol: str,
        params: dict[str, Any] | None,
        version: int,
    ) -> concurrent.futures.Future[tuple[bool, str]] | None:
        """Hand a parameter version the scheduler found to the bot's control (None: no bot
        here, or nothing to change)."""
        if self.control is None:
            return None
        return self.control.scheduled(loop, strategy, symbol, params, version)


def _factory(cls: type[Strategy], params: dict[str, Any]) -> Callable[[], Strategy]:
    return lambda: cls(**params)


def load_compiled(components: Iterable[str]) -> None:
    """Load the compiled indicators when `components` run strategies (the bot, the
    simulation): see `indicators.warm_up`. `Services.run` does it; a command calls it before
    `serve()` moves what start-up loaded out of the garbage collector's sight, or numba's
    60,000 objects would lengthen every full collection of the process by some 35 ms."""
    if {"bot", "sim"} & set(components):
        indicators.warm_up()


async def run_services(
    app: App,
    components: Iterable[str] = COMPONENTS,
    *,
    serve_api: ServeApi | None = None,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[Services], Awaitable[None] | None] | None = None,
) -> Services:
    """Run until `stop` (or Ctrl-C / SIGTERM when run from the CLI)."""
    system = Services(app, components, serve_api)
    stop = stop or asyncio.Event()
    runner = asyncio.create_task(system.run(stop))
    if on_ready is not None:
        waiter = asyncio.create_task(system.ready.wait())
        await asyncio.wait({runner, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if system.ready.is_set():
            result = on_ready(system)
            if asyncio.iscoroutine(result):
                await result
        waiter.cancel()
    await runner
    return system
