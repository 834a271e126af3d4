import { useEffect, useState } from "react";
import { api, items, qs } from "../api";
import {
  Badge,
  Card,
  ErrorBox,
  moneyColumn,
  numberColumn,
  Options,
  Table,
  timeColumn,
} from "../components/ui";
import { useAppState } from "../context";
import { hasRole } from "../format";
import { useApi } from "../hooks";
import type { Schema } from "../schema";

type Order = Schema<"OrderOut">;
type Fill = Schema<"FillOut">;

type PnlRow = Schema<"PnlRow">;

function Pnl() {
  const [by, setBy] = useState("day");
  const [mode, setMode] = useState("");
  const pnl = useApi<unknown>(`/api/pnl${qs({ by, mode })}`);
  return (
    <Card
      title="Realized PnL"
      testId="pnl"
      actions={
        <div className="row">
          <select value={by} onChange={(e) => setBy(e.target.value)} aria-label="Group by">
            <option value="day">by day</option>
            <option value="strategy">by strategy</option>
            <option value="symbol">by symbol</option>
          </select>
          <select value={mode} onChange={(e) => setMode(e.target.value)} aria-label="PnL mode">
            <option value="">all modes</option>
            <option value="paper">paper</option>
            <option value="live">live</option>
          </select>
        </div>
      }
    >
      <ErrorBox error={pnl.error} />
      <Table
        testId="pnl-table"
        rows={items<PnlRow>(pnl.data)}
        empty="No realized PnL yet."
        rowKey={(r) => r.key}
        columns={[
          { key: "key", label: by === "day" ? "Day" : by, render: (r) => r.key || "—" },
          moneyColumn("realized_pnl", "Realized PnL", true),
          moneyColumn("fees", "Fees"),
          numberColumn("entries", "Entries"),
        ]}
      />
    </Card>
  );
}

const PAGE = 100;

/** Newer/older buttons for a newest-first list fetched `PAGE` rows at a time. */
function Pager({
  page,
  count,
  onPage,
}: {
  page: number;
  count: number;
  onPage: (p: number) => void;
}) {
  if (page === 0 && count < PAGE) return null;
  return (
    <div className="row pager">
      <button
        type="button"
        className="small secondary"
        disabled={page === 0}
        onClick={() => onPage(page - 1)}
      >
        ← Newer
      </button>
      <span className="muted small">
        rows {page * PAGE + 1}–{page * PAGE + count}
      </span>
      <button
        type="button"
        className="small secondary"
        disabled={count < PAGE}
        onClick={() => onPage(page + 1)}
      >
        Older →
      </button>
    </div>
  );
}

const STATUSES = ["", "new", "partially_filled", "filled", "cancelled", "rejected"];
const OPEN = new Set(["new", "partially_filled"]);

/** A trader's cancel of an open order, through the running bot. */
function CancelButton({ order, onDone }: { order: Order; onDone: (message: string) => void }) {
  const [busy, setBusy] = useState(false);
  const cancel = async () => {
    setBusy(true);
    try {
      const out = await api.post<{ detail: string }>(
        `/api/orders/${encodeURIComponent(order.client_order_id)}/cancel`,
        { reason: "cancelled from the dashboard" },
      );
      onDone(`Order ${order.client_order_id}: ${out.detail}`);
    } catch (err) {
      onDone(`Order ${order.client_order_id} not cancelled: ${(err as Error).message}`);
    } finally {
      setBusy(false);
    }
  };
  return (
    <button
      type="button"
      className="small danger"
      data-testid={`cancel-${order.client_order_id}`}
      disabled={busy}
      onClick={cancel}
    >
      {busy ? "Cancelling…" : "Cancel"}
    </button>
  );
}

export function Orders() {
  const [status, setStatus] = useState("");
  const [symbol, setSymbol] = useState("");
  const [mode, setMode] = useState("");
  const [orderPage, setOrderPage] = useState(0);
  const [fillPage, setFillPage] = useState(0);
  const [cancelled, setCancelled] = useState<string | null>(null);
  const { session, events } = useAppState();
  const canCancel = hasRole(session.role, "trader");
  useEffect(() => {
    setOrderPage(0);
    setFillPage(0);
  }, [status, symbol, mode]);
  const orders = useApi<unknown>(
    `/api/orders${qs({ status, symbol, mode, limit: PAGE, offset: orderPage * PAGE })}`,
  );
  const fills = useApi<unknown>(
    `/api/fills${qs({ symbol, mode, limit: PAGE, offset: fillPage * PAGE })}`,
  );
  // New fills and order updates arrive on /ws: refresh the tables when one does.
  const latest = events[0];
  const { reload: reloadOrders } = orders;
  const { reload: reloadFills } = fills;
  useEffect(() => {
    if (latest && (latest.channel === "fills" || latest.channel === "order_status")) {
      reloadOrders();
      reloadFills();
    }
  }, [latest, reloadOrders, reloadFills]);

  return (
    <div className="page">
      <h1>Orders &amp; fills</h1>
      <div className="filters">
        <label>
          Status
          <select value={status} onChange={(e) => setStatus(e.target.value)}>
            <Options values={STATUSES} label={(s) => s || "any"} />
          </select>
        </label>
        <label>
          Mode
          <select value={mode} onChange={(e) => setMode(e.target.value)}>
            <option value="">any</option>
            <option value="paper">paper</option>
            <option value="live">live</option>
          </select>
        </label>
        <label>
          Symbol
          <input
            value={symbol}
            placeholder="all"
            onChange={(e) => setSymbol(e.target.value.trim())}
          />
        </label>
      </div>
      <Card title="Orders" testId="orders">
        <ErrorBox error={orders.error} />
        {cancelled && (
          <p className="notice" role="status" data-testid="cancel-notice">
            {cancelled}
          </p>
        )}
        <Table
          testId="orders-table"
          rows={items<Order>(orders.data)}
          empty="No orders."
          rowKey={(r) => r.client_order_id}
          columns={[
            timeColumn("created_at", "Time"),
            {
              key: "client_order_id",
              label: "Client id",
              render: (r) => <code>{r.client_order_id}</code>,
            },
            { key: "symbol", label: "Symbol" },
            { key: "side", label: "Side", render: (r) => <Badge kind={r.side}>{r.side}</Badge> },
            { key: "type", label: "Type" },
            numberColumn("qty", "Qty"),
            moneyColumn("limit_price", "Limit"),
            numberColumn("filled_qty", "Filled"),
            moneyColumn("avg_fill_price", "Avg fill"),
            {
              key: "status",
              label: "Status",
              render: (r) => <Badge kind={r.status}>{r.status}</Badge>,
            },
            { key: "mode", label: "Mode" },
            { key: "strategy", label: "Strategy" },
            ...(canCancel
              ? [
                  {
                    key: "cancel",
                    label: "",
                    render: (r: Order) =>
                      OPEN.has(r.status) ? (
                        <CancelButton
                          order={r}
                          onDone={(message) => {
                            setCancelled(message);
                            reloadOrders();
                          }}
                        />
                      ) : null,
                  },
                ]
              : []),
          ]}
        />
        <Pager page={orderPage} count={items(orders.data).length} onPage={setOrderPage} />
      </Card>
      <Pnl />
      <Card title="Fills" testId="fills">
        <ErrorBox error={fills.error} />
        <Table
          testId="fills-table"
          rows={items<Fill>(fills.data)}
          empty="No fills."
          columns={[
            timeColumn("ts", "Time"),
            {
              key: "client_order_id",
              label: "Order",
              render: (r) => <code>{r.client_order_id}</code>,
            },
            { key: "symbol", label: "Symbol", render: (r) => r.symbol ?? "—" },
            { key: "side", label: "Side", render: (r) => r.side ?? "—" },
            numberColumn("qty", "Qty"),
            moneyColumn("price", "Price"),
            moneyColumn("fee", "Fee"),
          ]}
        />
        <Pager page={fillPage} count={items(fills.data).length} onPage={setFillPage} />
      </Card>
    </div>
  );
}
