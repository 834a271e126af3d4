import type { Asset } from "../portfolio";
import { formatPct } from "../format";
import { moneyColumn, numberColumn, Table } from "./ui";

/** Balances per asset (the cash and each symbol's net holding) and their exposure: value as a
 * share of equity, with a bar. */
export function Balances({ assets }: { assets: Asset[] }) {
  return (
    <Table
      testId="balances-table"
      rows={assets}
      rowKey={(a) => a.asset}
      empty="No balances."
      columns={[
        { key: "asset", label: "Asset" },
        numberColumn("qty", "Quantity"),
        moneyColumn("price", "Price"),
        moneyColumn("value", "Value"),
        {
          key: "exposure_pct",
          label: "Exposure",
          numeric: true,
          render: (a) => (
            <span className="exposure">
              <span className="track" aria-hidden="true">
                <span
                  className={`meter ${Number(a.exposure_pct) < 0 ? "short" : ""}`}
                  style={{ width: `${Math.min(100, Math.abs(Number(a.exposure_pct ?? 0)))}%` }}
                />
              </span>
              {formatPct(a.exposure_pct)}
            </span>
          ),
        },
      ]}
    />
  );
}
