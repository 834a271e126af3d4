// @vitest-environment jsdom
import { act, Profiler, type ReactNode } from "react";
import { createRoot, type Root } from "react-dom/client";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Shell } from "./App";
import { PriceContext, PriceStore, usePrice, usePricedSymbols, usePrices } from "./prices";

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

const tick = (symbol: string, price: string) => ({ symbol, price, history: [] });

/** A WebSocket that only records itself: the test plays the server. */
class FakeSocket {
  static last: FakeSocket | null = null;
  onopen: (() => void) | null = null;
  onmessage: ((ev: { data: string }) => void) | null = null;
  onclose: (() => void) | null = null;
  constructor(
    public url: string,
    public protocols?: string[],
  ) {
    FakeSocket.last = this;
  }
  close() {}
}

let root: Root;
let container: HTMLElement;

async function render(node: ReactNode): Promise<void> {
  await act(async () => root.render(node));
}

beforeEach(() => {
  container = document.createElement("div");
  document.body.appendChild(container);
  root = createRoot(container);
});

afterEach(async () => {
  await act(async () => root.unmount());
  container.remove();
  vi.unstubAllGlobals();
});

describe("PriceStore", () => {
  it("keeps the previous price and a bounded history, and lets live ticks win over seeds", () => {
    const store = new PriceStore();
    store.push(tick("BTC", "100"));
    store.push(tick("BTC", "101.5"));
    store.seed([tick("BTC", "1"), tick("ETH", "20")]);
    expect(store.get("BTC")).toMatchObject({
      price: "101.5",
      previous: "100",
      history: [100, 101.5],
    });
    expect(store.get("ETH")).toMatchObject({ price: "20", history: [20] });
    expect(store.symbols()).toEqual(["BTC", "ETH"]);
    for (let i = 0; i < 200; i++) store.push(tick("ETH", String(i)));
    expect(store.get("ETH")?.history).toHaveLength(120);
  });

  it("tells a symbol's listeners about its ticks only, and stops when unsubscribed", () => {
    const store = new PriceStore();
    const btc = vi.fn();
    const every = vi.fn();
    const stop = store.subscribe("BTC", btc);
    store.subscribe("*", every);
    store.push(tick("ETH", "1"));
    store.push(tick("BTC", "2"));
    stop();
    store.push(tick("BTC", "3"));
    expect(btc).toHaveBeenCalledTimes(1);
    expect(every).toHaveBeenCalledTimes(3);
  });
});

describe("price subscriptions", () => {
  it("re-render a component on its own symbol's ticks only", async () => {
    const store = new PriceStore();
    const renders = { btc: 0, symbols: 0, all: 0 };
    function Btc() {
      renders.btc++;
      return <span>{usePrice("BTC")?.price ?? "-"}</span>;
    }
    function Symbols() {
      renders.symbols++;
      return <span>{usePricedSymbols().join(",")}</span>;
    }
    function All() {
      renders.all++;
      return <span>{Object.keys(usePrices()).length}</span>;
    }
    await render(
      <PriceContext.Provider value={store}>
        <Btc />
        <Symbols />
        <All />
      </PriceContext.Provider>,
    );
    await act(async () => {
      store.push(tick("ETH", "1"));
    });
    await act(async () => {
      store.push(tick("ETH", "2"));
    });
    await act(async () => {
      store.push(tick("BTC", "3"));
    });
    expect(renders).toEqual({ btc: 2, symbols: 3, all: 4 });
    expect(container.textContent).toBe("3BTC,ETH2");
  });

  it("without a provider is a programming error", async () => {
    function Orphan() {
      usePrice("BTC");
      return null;
    }
    vi.spyOn(console, "error").mockImplementation(() => {});
    await expect(render(<Orphan />)).rejects.toThrow("PriceContext missing");
  });
});

describe("the shell", () => {
  it("does not render a page that shows no prices again when prices tick", async () => {
    window.location.hash = "#/help";
    vi.stubGlobal("WebSocket", FakeSocket);
    vi.stubGlobal(
      "fetch",
      vi.fn(async () => new Response(JSON.stringify([{ symbol: "BTC", price: "1" }]))),
    );
    let commits = 0;
    const session = { token: "t", username: "ann", role: "viewer", expiresAt: null };
    await render(
      <Profiler id="shell" onRender={() => commits++}>
        <Shell session={session} logout={() => {}} />
      </Profiler>,
    );
    const socket = FakeSocket.last!;
    // The token goes as a subprotocol, never in the URL (proxies log URLs).
    expect(socket.url).toMatch(/\/ws$/);
    expect(socket.protocols).toEqual(["bearer", "t"]);
    await act(async () => socket.onopen?.());
    expect(container.textContent).toContain("signed in as ann");
    const before = commits;
    for (const price of ["101", "102", "103"])
      await act(async () =>
        socket.onmessage?.({
          data: JSON.stringify({ channel: "price_update", data: { symbol: "BTC", price } }),
        }),
      );
    expect(commits).toBe(before);
  });
});
