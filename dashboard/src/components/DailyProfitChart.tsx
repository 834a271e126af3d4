import type { DayProfit } from "../portfolio";
import { barShapes } from "../portfolio";
import { formatMoney } from "../format";

/** Net realised profit per UTC day as bars (inline SVG); each bar's tooltip has the figures. */
export function DailyProfitChart({ days }: { days: DayProfit[] }) {
  const width = 600;
  const height = 160;
  if (days.length === 0) return <p className="muted">No closed trades yet.</p>;
  const shown = days.slice(-30);
  const bars = barShapes(
    shown.map((d) => Number(d.net)),
    width,
    height,
  );
  const last = shown[shown.length - 1];
  return (
    <figure className="chart daily" data-testid="daily-profit-chart">
      <svg
        viewBox={`0 0 ${width} ${height}`}
        preserveAspectRatio="none"
        role="img"
        aria-label={`net profit of ${shown.length} days`}
      >
        {bars.map((b, i) => (
          <rect
            key={shown[i].day}
            className={`day-bar ${b.up ? "up" : "down"}`}
            data-testid="day-bar"
            x={b.x}
            y={b.y}
            width={b.width}
            height={b.height}
          >
            <title>
              {`${shown[i].day}: net ${formatMoney(shown[i].net)} (realised ${formatMoney(shown[i].realized_pnl)}, fees ${formatMoney(shown[i].fees)}, ${shown[i].trades} trades)`}
            </title>
          </rect>
        ))}
      </svg>
      <figcaption>
        <span>{shown[0].day}</span>
        <span>
          closed PnL to date {formatMoney(last.cumulative)} · {last.day} {formatMoney(last.net)}
        </span>
      </figcaption>
    </figure>
  );
}
