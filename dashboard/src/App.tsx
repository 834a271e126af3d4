import { useCallback, useEffect, useMemo, useState } from "react";
import { api, items, loadSession, saveSession, setUnauthorizedHandler, type Session } from "./api";
import { ErrorBoundary } from "./components/ErrorBoundary";
import { AppContext } from "./context";
import { hasRole } from "./format";
import { useLive, type LiveMessage } from "./hooks";
import { Admin } from "./pages/Admin";
import { Alerts } from "./pages/Alerts";
import { BacktestCompare } from "./pages/BacktestCompare";
import { BacktestDetail } from "./pages/BacktestDetail";
import { Backtests } from "./pages/Backtests";
import { Help } from "./pages/Help";
import { Login } from "./pages/Login";
import { Logs } from "./pages/Logs";
import { Markets } from "./pages/Markets";
import { Orders } from "./pages/Orders";
import { Overview } from "./pages/Overview";
import { Profile } from "./pages/Profile";
import { Reports } from "./pages/Reports";
import { Simulations } from "./pages/Simulations";
import { Strategies } from "./pages/Strategies";
import { System } from "./pages/System";
import { PriceContext, PriceStore, type PriceTick } from "./prices";

function useHashRoute(): string {
  const read = () => window.location.hash.replace(/^#/, "") || "/";
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const on = () => setRoute(read());
    window.addEventListener("hashchange", on);
    return () => window.removeEventListener("hashchange", on);
  }, []);
  return route;
}

const NAV: { path: string; label: string; role?: "admin" }[] = [
  { path: "/", label: "Overview" },
  { path: "/markets", label: "Markets" },
  { path: "/orders", label: "Orders & fills" },
  { path: "/strategies", label: "Strategies" },
  { path: "/backtests", label: "Backtests" },
  { path: "/sim", label: "Simulations" },
  { path: "/alerts", label: "Alerts & actions" },
  { path: "/reports", label: "Reports" },
  { path: "/system", label: "System" },
  { path: "/logs", label: "Logs", role: "admin" },
  { path: "/admin", label: "Admin", role: "admin" },
];

/** A price_update payload -> (symbol, price, ts), tolerant of the field names in use. */
function priceFrom(data: unknown): PriceTick | null {
  if (!data || typeof data !== "object") return null;
  const d = data as Record<string, unknown>;
  const symbol = d.symbol ?? d.s;
  const price = d.price ?? d.last ?? d.close ?? d.p;
  if (symbol === undefined || price === undefined || price === null) return null;
  const ts = d.ts ?? d.timestamp;
  return {
    symbol: String(symbol),
    price: String(price),
    ts: ts ? String(ts) : undefined,
    history: [],
  };
}

const MAX_EVENTS = 50;

/** The signed-in frame: navigation, the live feed and the page of the route. A price tick
 * goes into the price store, not into this component's state: only what subscribes to that
 * price renders again. */
export function Shell({ session, logout }: { session: Session; logout: () => void }) {
  const route = useHashRoute();
  const [prices] = useState(() => new PriceStore());
  const [events, setEvents] = useState<LiveMessage[]>([]);
  const [menuOpen, setMenuOpen] = useState(false);
  useEffect(() => {
    setMenuOpen(false);
  }, [route]);
  const onMessage = useCallback(
    (m: LiveMessage) => {
      if (m.channel === "price_update") {
        const tick = priceFrom(m.data);
        if (tick) prices.push(tick);
        return;
      }
      setEvents((e) => [m, ...e].slice(0, MAX_EVENTS));
    },
    [prices],
  );
  const wsState = useLive(session.token, onMessage);
  // The latest price of each symbol the API has seen, so the page is not empty until the next
  // tick (live ticks that arrived meanwhile win).
  useEffect(() => {
    api
      .get<unknown>("/api/prices")
      .then((data) => {
        prices.seed(
          items<unknown>(data)
            .map(priceFrom)
            .filter((t): t is PriceTick => t !== null),
        );
      })
      .catch(() => {
        /* an API without /api/prices: live ticks only */
      });
  }, [prices]);
  const state = useMemo(
    () => ({ session, logout, events, wsState }),
    [session, logout, events, wsState],
  );

  let page;
  const bt = /^\/backtests\/(\d+)$/.exec(route);
  const cmp = /^\/backtests\/compare\/([\d,]+)$/.exec(route);
  if (bt) page = <BacktestDetail id={Number(bt[1])} />;
  else if (cmp) page = <BacktestCompare ids={cmp[1].split(",").filter(Boolean).map(Number)} />;
  else if (route === "/orders") page = <Orders />;
  else if (route === "/markets") page = <Markets />;
  else if (route === "/strategies") page = <Strategies />;
  else if (route === "/backtests") page = <Backtests />;
  else if (route === "/sim") page = <Simulations />;
  else if (route === "/alerts") page = <Alerts />;
  else if (route === "/profile") page = <Profile />;
  else if (route === "/reports") page = <Reports />;
  else if (route === "/help") page = <Help />;
  else if (route === "/system") page = <System />;
  else if (route === "/admin" && hasRole(session.role, "admin")) page = <Admin />;
  else if (route === "/logs" && hasRole(session.role, "admin")) page = <Logs />;
  else page = <Overview />;

  const active = bt || cmp ? "/backtests" : route;
  return (
    <AppContext.Provider value={state}>
      <PriceContext.Provider value={prices}>
        <div className="shell">
          <header className="topbar">
            <a className="brand" href="#/">
              SIGMA
            </a>
            <button
              className="menu-toggle"
              aria-label="Menu"
              onClick={() => setMenuOpen((o) => !o)}
            >
              ☰
            </button>
            <nav className={menuOpen ? "open" : undefined} onClick={() => setMenuOpen(false)}>
              {NAV.filter((n) => !n.role || hasRole(session.role, n.role)).map((n) => (
                <a
                  key={n.path}
                  href={`#${n.path}`}
                  className={active === n.path ? "active" : undefined}
                >
                  {n.label}
                </a>
              ))}
            </nav>
            <div className="who">
              <span
                className={`ws-dot ${wsState}`}
                title={`live feed: ${wsState}`}
                data-testid="ws-state"
                data-state={wsState}
              />
              <a
                href="#/profile"
                className="whoami"
                data-testid="whoami"
                title="Profile and preferences"
              >
                {session.username}{" "}
                <span className={`badge role-${session.role}`}>{session.role}</span>
              </a>
              <a href="#/help" className="whoami" title="Help">
                Help
              </a>
              <button className="link" onClick={logout}>
                Sign out
              </button>
            </div>
          </header>
          <main>
            <ErrorBoundary key={route}>{page}</ErrorBoundary>
          </main>
        </div>
      </PriceContext.Provider>
    </AppContext.Provider>
  );
}

export function App() {
  const [session, setSession] = useState<Session | null>(loadSession);
  const logout = useCallback(() => {
    saveSession(null);
    setSession(null);
  }, []);
  // Signing out also revokes the user's tokens on the server (every login of theirs), so a
  // copied token stops working too; the local sign-out happens whatever the answer.
  const signOut = useCallback(() => {
    void api
      .post("/api/auth/logout")
      .catch(() => undefined)
      .finally(logout);
  }, [logout]);
  // The role may have changed since the token was issued (an admin edited the user): ask.
  const username = session?.username;
  useEffect(() => {
    if (!username) return;
    api
      .get<{ username: string; role: string }>("/api/me")
      .then((me) =>
        setSession((s) => {
          if (!s || s.role === me.role) return s;
          const next = { ...s, role: me.role };
          saveSession(next);
          return next;
        }),
      )
      .catch(() => {
        /* a 401 signs out through the handler */
      });
  }, [username]);
  useEffect(() => {
    setUnauthorizedHandler(logout);
  }, [logout]);
  if (!session) return <Login onLogin={setSession} />;
  return <Shell session={session} logout={signOut} />;
}
