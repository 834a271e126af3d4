import { useState } from "react";
import { api, items } from "../api";
import { formatStat } from "../format";
import { useApi, useEvery } from "../hooks";
import { Badge, Card, ErrorBox, Table } from "./ui";
import type { Schema } from "../schema";

/** One strategy on one symbol as the bot trades it (GET /api/controls). */
export type PairState = Schema<"PairState">;

/** What the bot did with a command. */
type CommandOut = Schema<"CommandOut">;

const STATE_BADGE: Record<PairState["state"], string> = {
  live: "good",
  stopped: "error",
  disabled: "error",
  throttled: "warn",
};

/** The sentence shown after a command: the bot's answer, or that it applies later. */
export function outcomeText(
  what: string,
  out: Pick<CommandOut, "delivered" | "ok" | "detail">,
): string {
  if (!out.delivered) return `${what}: ${out.detail}`;
  return `${what}: ${out.ok ? "" : "refused: "}${out.detail}`;
}

function paramsText(p: Record<string, unknown> | null): string {
  if (!p) return "defaults";
  return Object.entries(p)
    .map(([k, v]) => `${k}=${formatStat(v)}`)
    .join(", ");
}

/** Per strategy and symbol: live or not and why, the regime pin, and a trader's buttons. */
export function LiveControls({ canAct, onParams }: { canAct: boolean; onParams?: () => void }) {
  const pairs = useApi<unknown>("/api/controls");
  useEvery(pairs.reload, 5000);
  const [reason, setReason] = useState("");
  const [qty, setQty] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  const run = async (key: string, what: string, send: () => Promise<CommandOut>) => {
    setBusy(key);
    setNotice(null);
    setError(null);
    try {
      setNotice(outcomeText(what, await send()));
      pairs.reload();
      onParams?.();
    } catch (err) {
      setError(`${what}: ${(err as Error).message}`);
    } finally {
      setBusy(null);
    }
  };

  const base = (r: PairState) =>
    `/api/controls/${encodeURIComponent(r.strategy)}/${encodeURIComponent(r.symbol)}`;
  const id = (r: PairState) => `${r.strategy}-${r.symbol}`;

  const actions = (r: PairState) => {
    const key = id(r);
    const disabled = busy !== null;
    const entryQty = qty[key]?.trim();
    return (
      <div className="row controls">
        {r.enabled ? (
          <button
            type="button"
            className="small secondary"
            data-testid={`stop-${key}`}
            disabled={disabled}
            onClick={() =>
              run(key, `Stop ${r.strategy} on ${r.symbol}`, () =>
                api.put<CommandOut>(`${base(r)}/enabled`, { on: false, reason }),
              )
            }
          >
            Stop
          </button>
        ) : (
          <button
            type="button"
            className="small"
            data-testid={`start-${key}`}
            disabled={disabled}
            onClick={() =>
              run(key, `Start ${r.strategy} on ${r.symbol}`, () =>
                api.put<CommandOut>(`${base(r)}/enabled`, { on: true, reason }),
              )
            }
          >
            Start
          </button>
        )}
        {(r.regime_status === "disable" || r.regime_status === "throttle") && (
          <button
            type="button"
            className="small"
            data-testid={`reenable-${key}`}
            disabled={disabled}
            onClick={() =>
              run(key, `Re-enable ${r.strategy} on ${r.symbol}`, async () => {
                const out = await api.post<{ bot: CommandOut }>(
                  `/api/strategies/${encodeURIComponent(r.strategy)}/${encodeURIComponent(r.symbol)}/enable`,
                  { reason },
                );
                return out.bot;
              })
            }
          >
            Re-enable
          </button>
        )}
        <button
          type="button"
          className="small secondary"
          data-testid={`${r.pinned ? "unpin" : "pin"}-${key}`}
          disabled={disabled}
          title={
            r.pinned
              ? "Let the regime loop tune these parameters again"
              : "Keep the regime loop off these parameters"
          }
          onClick={() =>
            run(
              key,
              `${r.pinned ? "Allow regime tuning of" : "Pin"} ${r.strategy} on ${r.symbol}`,
              () => api.put<CommandOut>(`${base(r)}/pinned`, { on: !r.pinned, reason }),
            )
          }
        >
          {r.pinned ? "Allow regime tuning" : "Pin parameters"}
        </button>
        <input
          className="qty"
          aria-label={`Entry quantity for ${r.strategy} on ${r.symbol}`}
          data-testid={`qty-${key}`}
          placeholder="qty (all cash)"
          value={qty[key] ?? ""}
          onChange={(e) => setQty((q) => ({ ...q, [key]: e.target.value }))}
        />
        <button
          type="button"
          className="small"
          data-testid={`entry-${key}`}
          disabled={disabled}
          onClick={() =>
            run(key, `Force entry ${r.strategy} on ${r.symbol}`, () =>
              api.post<CommandOut>(`${base(r)}/entry`, {
                reason,
                ...(entryQty ? { qty: entryQty } : {}),
              }),
            )
          }
        >
          Force entry
        </button>
        <button
          type="button"
          className="small danger"
          data-testid={`close-${key}`}
          disabled={disabled}
          onClick={() =>
            run(key, `Close ${r.strategy} on ${r.symbol}`, () =>
              api.post<CommandOut>(`${base(r)}/close`, { reason }),
            )
          }
        >
          Close position
        </button>
      </div>
    );
  };

  return (
    <Card title="Live strategies" testId="live-controls">
      <ErrorBox error={pairs.error} />
      {canAct && (
        <label className="reason">
          Reason (recorded with every command)
          <input
            name="control-reason"
            value={reason}
            placeholder="why"
            onChange={(e) => setReason(e.target.value)}
          />
        </label>
      )}
      {notice && (
        <p className="notice" role="status" data-testid="control-notice">
          {notice}
        </p>
      )}
      <ErrorBox error={error} />
      <Table
        testId="controls-table"
        rows={items<PairState>(pairs.data)}
        empty="The bot trades no strategy."
        rowKey={(r) => id(r)}
        columns={[
          { key: "strategy", label: "Strategy" },
          { key: "symbol", label: "Symbol" },
          {
            key: "state",
            label: "State",
            render: (r) => (
              <span data-testid={`state-${id(r)}`}>
                <Badge kind={STATE_BADGE[r.state]}>{r.state}</Badge>{" "}
                {r.state !== "live" && <span className="muted">{r.why}</span>}
              </span>
            ),
          },
          {
            key: "pinned",
            label: "Regime tuning",
            render: (r) => (
              <span data-testid={`pinned-${id(r)}`}>
                {r.pinned
                  ? `pinned by ${r.pinned_by}${r.pin_reason ? `: ${r.pin_reason}` : ""}`
                  : "on"}
              </span>
            ),
          },
          {
            key: "params",
            label: "Parameters",
            render: (r) => (
              <code title={r.params_by ? `v${r.version} by ${r.params_by}` : undefined}>
                {paramsText(r.params)}
              </code>
            ),
          },
          { key: "position", label: "Position", numeric: true },
          ...(canAct ? [{ key: "actions", label: "", render: actions }] : []),
        ]}
      />
    </Card>
  );
}
