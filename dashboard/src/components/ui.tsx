import type { ReactNode } from "react";
import { formatDecimal, formatMoney, formatPct, formatTs, sign } from "../format";

export interface Column<T> {
  key: string;
  label: string;
  render?: (row: T) => ReactNode;
  numeric?: boolean;
  /** Long text (a description, labels) that wraps instead of widening the table. */
  wrap?: boolean;
}

function cellClass<T>(c: Column<T>): string | undefined {
  const names = [c.numeric ? "num" : "", c.wrap ? "wrap" : ""].filter(Boolean);
  return names.length ? names.join(" ") : undefined;
}

/** A plain data table; cells default to the row's field of the same key. */
export function Table<T>({
  rows,
  columns,
  empty = "Nothing here yet.",
  testId,
  rowKey,
}: {
  rows: T[];
  columns: Column<T>[];
  empty?: string;
  testId?: string;
  rowKey?: (row: T, i: number) => string | number;
}) {
  if (rows.length === 0)
    return (
      <p className="empty" data-testid={testId}>
        {empty}
      </p>
    );
  return (
    <div className="table-wrap">
      <table data-testid={testId}>
        <thead>
          <tr>
            {columns.map((c) => (
              <th key={c.key} className={cellClass(c)}>
                {c.label}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((row, i) => (
            <tr key={rowKey ? rowKey(row, i) : i}>
              {columns.map((c) => (
                <td key={c.key} className={cellClass(c)} data-label={c.label}>
                  {c.render ? c.render(row) : String(field(row, c.key) ?? "—")}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** A money figure, coloured by sign when `signed`. */
export function Money({ value, signed = false }: { value: unknown; signed?: boolean }) {
  const text = formatMoney(value as string | null);
  const s = signed ? sign(value as string) : 0;
  return <span className={s > 0 ? "pos" : s < 0 ? "neg" : undefined}>{text}</span>;
}

/** A percentage string (in percent), coloured by sign. */
export function Percent({ value }: { value: string | null | undefined }) {
  const s = sign(value);
  return <span className={s > 0 ? "pos" : s < 0 ? "neg" : undefined}>{formatPct(value)}</span>;
}

export function Num({ value }: { value: unknown }) {
  return <>{formatDecimal(value as string | null)}</>;
}

export function Ts({ value }: { value: unknown }) {
  return <>{formatTs(value as string | null)}</>;
}

function field<T>(row: T, key: string): unknown {
  return (row as Record<string, unknown>)[key];
}

/** A right-aligned column of the row's money field `key`, coloured by sign when `signed`. */
export function moneyColumn<T>(key: string, label: string, signed = false): Column<T> {
  return {
    key,
    label,
    numeric: true,
    render: (row) => <Money value={field(row, key)} signed={signed} />,
  };
}

/** A right-aligned column of the row's decimal field `key` (a quantity, a ratio). */
export function numberColumn<T>(key: string, label: string): Column<T> {
  return { key, label, numeric: true, render: (row) => <Num value={field(row, key)} /> };
}

/** A column of the row's timestamp field `key` in local time. */
export function timeColumn<T>(key: string, label: string): Column<T> {
  return { key, label, render: (row) => <Ts value={field(row, key)} /> };
}

/** The `<option>`s of a select, one per value, shown as `label(value)` (the value itself by
 * default). */
export function Options<V extends string | number>({
  values,
  label = String,
}: {
  values: readonly V[];
  label?: (value: V) => ReactNode;
}) {
  return (
    <>
      {values.map((v) => (
        <option key={v} value={v}>
          {label(v)}
        </option>
      ))}
    </>
  );
}

export function Card({
  title,
  children,
  actions,
  testId,
}: {
  title: string;
  children: ReactNode;
  actions?: ReactNode;
  testId?: string;
}) {
  return (
    <section className="card" data-testid={testId}>
      <header className="card-head">
        <h2>{title}</h2>
        {actions}
      </header>
      {children}
    </section>
  );
}

export function ErrorBox({ error }: { error: string | null | undefined }) {
  if (!error) return null;
  return (
    <p className="error" role="alert">
      {error}
    </p>
  );
}

export function Loading({ when }: { when: boolean }) {
  return when ? <p className="muted">Loading…</p> : null;
}

export function Badge({ kind, children }: { kind?: string; children: ReactNode }) {
  return <span className={`badge ${kind ?? ""}`}>{children}</span>;
}
