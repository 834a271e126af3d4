import { useState } from "react";
import { items, qs } from "../api";
import { Badge, Card, ErrorBox, Options, Table } from "../components/ui";
import { formatDecimal, formatTs } from "../format";
import { useApi, useEvery } from "../hooks";
import type { Schema } from "../schema";

type LogFile = Schema<"LogFileOut">;
type LogLine = Schema<"LogLineOut">;

const LEVELS = ["", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] as const;
const LIMITS = [100, 200, 500, 1000] as const;

function levelKind(level: string | null): string | undefined {
  if (level === "WARNING") return "warn";
  if (level === "ERROR" || level === "CRITICAL") return "error";
  return undefined;
}

/** Extra fields of a record as `key=value`, the traceback apart. */
function extraText(extra: Record<string, unknown>): string {
  return Object.entries(extra)
    .filter(([k]) => k !== "exc")
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(" ");
}

/** The end of a process log file (admins), filtered by level and text, newest last;
 * refreshed every few seconds while `follow` is on. */
export function Logs() {
  const files = useApi<unknown>("/api/logs");
  const names = items<LogFile>(files.data);
  const [file, setFile] = useState("");
  const [level, setLevel] = useState("");
  const [text, setText] = useState("");
  const [limit, setLimit] = useState<number>(200);
  const [follow, setFollow] = useState(true);
  const chosen = file || names[0]?.name || "";
  const lines = useApi<unknown>(
    chosen
      ? `/api/logs/${encodeURIComponent(chosen)}${qs({ level, q: text.trim(), limit })}`
      : null,
  );
  useEvery(() => {
    if (follow && chosen) lines.reload();
  }, 5_000);
  const rows = items<LogLine>(lines.data);
  return (
    <div className="page">
      <h1>Logs</h1>
      <div className="filters">
        <label>
          File
          <select name="log-file" value={chosen} onChange={(e) => setFile(e.target.value)}>
            <Options
              values={names.map((f) => f.name)}
              label={(n) => {
                const f = names.find((x) => x.name === n);
                return `${n}.log (${formatDecimal(String(Math.ceil((f?.size ?? 0) / 1024)))} KiB)`;
              }}
            />
          </select>
        </label>
        <label>
          Level
          <select name="log-level" value={level} onChange={(e) => setLevel(e.target.value)}>
            <Options values={LEVELS} label={(v) => (v === "" ? "all" : `${v} and above`)} />
          </select>
        </label>
        <label>
          Contains
          <input
            name="log-text"
            value={text}
            placeholder="text, e.g. BTC"
            onChange={(e) => setText(e.target.value)}
          />
        </label>
        <label>
          Lines
          <select name="log-limit" value={limit} onChange={(e) => setLimit(Number(e.target.value))}>
            <Options values={LIMITS} />
          </select>
        </label>
        <label className="check">
          <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.target.checked)} />
          Follow
        </label>
      </div>
      <Card title={chosen ? `${chosen}.log` : "Log"} testId="log-view">
        <ErrorBox error={files.error ?? lines.error} />
        {files.data !== undefined && names.length === 0 ? (
          <p className="empty" data-testid="no-logs">
            No log files yet (the processes write them under the var folder&apos;s logs/).
          </p>
        ) : (
          <Table
            testId="log-table"
            rows={rows}
            empty="No lines match."
            columns={[
              { key: "ts", label: "Time", render: (r) => (r.ts ? formatTs(r.ts) : "") },
              {
                key: "level",
                label: "Level",
                render: (r) => (r.level ? <Badge kind={levelKind(r.level)}>{r.level}</Badge> : ""),
              },
              { key: "logger", label: "Logger", render: (r) => <code>{r.logger ?? ""}</code> },
              {
                key: "msg",
                label: "Message",
                wrap: true,
                render: (r) => (
                  <span className="log-msg" data-testid="log-line">
                    {r.msg}
                    {Object.keys(r.extra).length > 0 && (
                      <code className="muted"> {extraText(r.extra)}</code>
                    )}
                    {typeof r.extra.exc === "string" && <pre className="exc">{r.extra.exc}</pre>}
                  </span>
                ),
              },
            ]}
          />
        )}
      </Card>
    </div>
  );
}
