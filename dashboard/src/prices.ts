// Live prices outside React state: the WebSocket handler writes ticks into a `PriceStore` and
// only the components that read a price subscribe to it (useSyncExternalStore), so a tick
// re-renders them and nothing else - not the shell, not a page that shows no prices.
import { createContext, useCallback, useContext, useSyncExternalStore } from "react";

export interface PriceTick {
  symbol: string;
  price: string;
  ts?: string;
  previous?: string;
  /** Recent prices (oldest first) for the sparkline; display only. */
  history: number[];
}

const MAX_HISTORY = 120;
const EVERY = "*";
type Listener = () => void;

/** The latest tick per symbol. Snapshots are immutable: a change makes new objects, so
 * React compares them by identity. */
export class PriceStore {
  private bySymbol: Readonly<Record<string, PriceTick>> = {};
  private symbolList: readonly string[] = [];
  private listeners = new Map<string, Set<Listener>>();

  /** A live tick: it becomes the symbol's price, the one before it `previous`. */
  push(tick: PriceTick): void {
    const before = this.bySymbol[tick.symbol];
    const history = [...(before?.history ?? []), Number(tick.price)].slice(-MAX_HISTORY);
    this.put({ ...tick, previous: before?.price, history });
  }

  /** Stored prices from the API: only for symbols without a live tick yet (those win). */
  seed(ticks: PriceTick[]): void {
    for (const t of ticks)
      if (!(t.symbol in this.bySymbol)) this.put({ ...t, history: [Number(t.price)] });
  }

  /** The tick of `symbol`, if any. */
  get(symbol: string): PriceTick | undefined {
    return this.bySymbol[symbol];
  }

  /** Every symbol's tick (a new object after each change). */
  all(): Readonly<Record<string, PriceTick>> {
    return this.bySymbol;
  }

  /** The symbols with a price, sorted (a new array only when a symbol is added). */
  symbols(): readonly string[] {
    return this.symbolList;
  }

  /** Call `listener` on every change of `symbol` (`"*"`: of any symbol); returns the
   * unsubscribe function. */
  subscribe(symbol: string, listener: Listener): () => void {
    let set = this.listeners.get(symbol);
    if (!set) this.listeners.set(symbol, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.listeners.delete(symbol);
    };
  }

  private put(tick: PriceTick): void {
    const added = !(tick.symbol in this.bySymbol);
    this.bySymbol = { ...this.bySymbol, [tick.symbol]: tick };
    if (added) this.symbolList = Object.keys(this.bySymbol).sort();
    for (const key of [tick.symbol, EVERY]) this.listeners.get(key)?.forEach((fn) => fn());
  }
}

export const PriceContext = createContext<PriceStore | null>(null);

function useStore(): PriceStore {
  const store = useContext(PriceContext);
  if (!store) throw new Error("PriceContext missing");
  return store;
}

/** The live price of `symbol`; re-renders on its ticks only. */
export function usePrice(symbol: string): PriceTick | undefined {
  const store = useStore();
  const subscribe = useCallback((fn: Listener) => store.subscribe(symbol, fn), [store, symbol]);
  return useSyncExternalStore(subscribe, () => store.get(symbol));
}

/** Every symbol's live price; re-renders on any tick. */
export function usePrices(): Readonly<Record<string, PriceTick>> {
  const store = useStore();
  const subscribe = useCallback((fn: Listener) => store.subscribe(EVERY, fn), [store]);
  return useSyncExternalStore(subscribe, () => store.all());
}

/** The symbols that have a price; re-renders only when one is added. */
export function usePricedSymbols(): readonly string[] {
  const store = useStore();
  const subscribe = useCallback((fn: Listener) => store.subscribe(EVERY, fn), [store]);
  return useSyncExternalStore(subscribe, () => store.symbols());
}
