import { createContext, useContext } from "react";
import type { Session } from "./api";
import type { LiveMessage, WsState } from "./hooks";

export interface PriceTick {
  symbol: string;
  price: string;
  ts?: string;
  previous?: string;
  /** Recent prices (oldest first) for the sparkline; display only. */
  history: number[];
}

export interface AppState {
  session: Session;
  logout: () => void;
  prices: Record<string, PriceTick>;
  events: LiveMessage[];
  wsState: WsState;
}

export const AppContext = createContext<AppState | null>(null);

export function useAppState(): AppState {
  const ctx = useContext(AppContext);
  if (!ctx) throw new Error("AppContext missing");
  return ctx;
}
