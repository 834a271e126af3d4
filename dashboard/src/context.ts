import { createContext, useContext } from "react";
import type { Session } from "./api";
import type { LiveMessage, WsState } from "./hooks";

/** What every page may read. Live prices are not here: they change several times a second,
 * and a page subscribes to those it shows (`usePrice`, `usePrices` in prices.ts). */
export interface AppState {
  session: Session;
  logout: () => void;
  events: LiveMessage[];
  wsState: WsState;
}

export const AppContext = createContext<AppState | null>(null);

export function useAppState(): AppState {
  const ctx = useContext(AppContext);
  if (!ctx) throw new Error("AppContext missing");
  return ctx;
}
