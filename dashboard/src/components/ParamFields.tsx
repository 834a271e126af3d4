import { formatDecimal, validateParam, type ParamSpec } from "../format";

export type ParamSpecs = Record<string, ParamSpec>;

/** Text inputs for a strategy's parameters, with bounds shown and per-field errors. */
export function ParamFields({
  specs,
  values,
  errors,
  onChange,
  idPrefix,
}: {
  specs: ParamSpecs;
  values: Record<string, string>;
  errors: Record<string, string>;
  onChange: (name: string, value: string) => void;
  idPrefix: string;
}) {
  const names = Object.keys(specs);
  if (names.length === 0) return <p className="muted">This strategy has no parameters.</p>;
  return (
    <div className="param-fields">
      {names.map((name) => {
        const spec = specs[name];
        const bounds =
          spec.type === "bool" || typeof spec.default === "boolean"
            ? ""
            : spec.low != null || spec.high != null
              ? `${spec.low != null ? formatDecimal(String(spec.low)) : "…"} – ${
                  spec.high != null ? formatDecimal(String(spec.high)) : "…"
                }`
              : "";
        return (
          <label key={name} className={errors[name] ? "invalid" : undefined}>
            <span>
              {name} {bounds && <small className="muted">({bounds})</small>}
            </span>
            {spec.type === "bool" || typeof spec.default === "boolean" ? (
              <select
                name={name}
                id={`${idPrefix}-${name}`}
                value={(values[name] ?? "").toLowerCase()}
                onChange={(e) => onChange(name, e.target.value)}
              >
                <option value="true">true</option>
                <option value="false">false</option>
              </select>
            ) : (
              <input
                name={name}
                id={`${idPrefix}-${name}`}
                value={values[name] ?? ""}
                onChange={(e) => onChange(name, e.target.value)}
                aria-invalid={Boolean(errors[name])}
              />
            )}
            {errors[name] && <small className="field-error">{errors[name]}</small>}
          </label>
        );
      })}
    </div>
  );
}

/** Initial text values: the current params, else each spec's default. */
export function initialValues(
  specs: ParamSpecs,
  current?: Record<string, unknown>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, spec] of Object.entries(specs)) {
    const v = current && name in current ? current[name] : spec.default;
    out[name] = v === undefined || v === null ? "" : String(v);
  }
  return out;
}

/** Validate every field; returns parsed params or the per-field errors. */
export function collectParams(
  specs: ParamSpecs,
  values: Record<string, string>,
): { params: Record<string, unknown>; errors: Record<string, string> } {
  const params: Record<string, unknown> = {};
  const errors: Record<string, string> = {};
  for (const name of Object.keys(specs)) {
    const r = validateParam(name, values[name] ?? "", specs[name]);
    if (r.error) errors[name] = r.error;
    else params[name] = r.value;
  }
  return { params, errors };
}
