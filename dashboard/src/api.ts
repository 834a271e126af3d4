// Thin client for the SIGMA REST API (docs/api.md). Errors carry the server's `detail`.

export interface Session {
  token: string;
  username: string;
  role: string;
  expiresAt: string | null;
  refreshToken?: string | null;
  refreshExpiresAt?: string | null;
}

const STORAGE_KEY = "sigma.session";

export function loadSession(): Session | null {
  try {
    const raw = localStorage.getItem(STORAGE_KEY);
    if (!raw) return null;
    const s = JSON.parse(raw) as Session;
    const now = Date.now();
    const accessOk = !s.expiresAt || new Date(s.expiresAt).getTime() > now;
    const refreshOk =
      Boolean(s.refreshToken) &&
      (!s.refreshExpiresAt || new Date(s.refreshExpiresAt).getTime() > now);
    return accessOk || refreshOk ? s : null;
  } catch {
    return null;
  }
}

export function saveSession(s: Session | null): void {
  if (s) localStorage.setItem(STORAGE_KEY, JSON.stringify(s));
  else localStorage.removeItem(STORAGE_KEY);
}

export class ApiError extends Error {
  constructor(
    public status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Human text from an error body: `{"detail": "..."}` or FastAPI's validation list. */
export function errorText(body: unknown, status: number): string {
  if (body && typeof body === "object" && "detail" in body) {
    const detail = (body as { detail: unknown }).detail;
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail))
      return detail
        .map((d) => {
          const loc = Array.isArray(d?.loc)
            ? d.loc.filter((p: unknown) => p !== "body").join(".")
            : "";
          return loc ? `${loc}: ${d?.msg ?? ""}` : String(d?.msg ?? JSON.stringify(d));
        })
        .join("; ");
    return JSON.stringify(detail);
  }
  return `request failed (HTTP ${status})`;
}

let onUnauthorized: () => void = () => {};
export function setUnauthorizedHandler(fn: () => void): void {
  onUnauthorized = fn;
}

function sessionFrom(data: Record<string, unknown>, username: string): Session {
  return {
    token: String(data.access_token),
    username,
    role: String(data.role ?? "viewer"),
    expiresAt: data.expires_at ? String(data.expires_at) : null,
    refreshToken: data.refresh_token ? String(data.refresh_token) : null,
    refreshExpiresAt: data.refresh_expires_at ? String(data.refresh_expires_at) : null,
  };
}

let refreshing: Promise<Session | null> | null = null;

/** Trade the refresh token for a new access token (one request at a time); null if refused. */
export function refreshSession(): Promise<Session | null> {
  const current = loadSession();
  if (!current?.refreshToken) return Promise.resolve(null);
  refreshing ??= fetch("/api/auth/refresh", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ refresh_token: current.refreshToken }),
  })
    .then(async (res) => {
      if (!res.ok) return null;
      const next = sessionFrom((await res.json()) as Record<string, unknown>, current.username);
      saveSession(next);
      return next;
    })
    .catch(() => null)
    .finally(() => {
      refreshing = null;
    });
  return refreshing;
}

async function request<T>(method: string, path: string, body?: unknown, retry = true): Promise<T> {
  let session = loadSession();
  if (session?.expiresAt && new Date(session.expiresAt).getTime() <= Date.now()) {
    session = await refreshSession();
  }
  const headers: Record<string, string> = { Accept: "application/json" };
  if (session) headers.Authorization = `Bearer ${session.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let data: unknown = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!res.ok) {
    if (res.status === 401 && session) {
      if (retry && (await refreshSession())) return request<T>(method, path, body, false);
      onUnauthorized();
    }
    throw new ApiError(res.status, errorText(data, res.status));
  }
  return data as T;
}

export const api = {
  get: <T>(path: string) => request<T>("GET", path),
  post: <T>(path: string, body?: unknown) => request<T>("POST", path, body ?? {}),
  put: <T>(path: string, body?: unknown) => request<T>("PUT", path, body ?? {}),
  patch: <T>(path: string, body?: unknown) => request<T>("PATCH", path, body ?? {}),
  delete: <T>(path: string) => request<T>("DELETE", path),
};

/** OAuth2 password flow: form-encoded username/password -> bearer token and role. */
export async function login(username: string, password: string): Promise<Session> {
  const form = new URLSearchParams({ username, password, grant_type: "password" });
  const res = await fetch("/api/auth/token", {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
    body: form.toString(),
  });
  let data: Record<string, unknown> = {};
  try {
    data = (await res.json()) as Record<string, unknown>;
  } catch {
    /* no body */
  }
  if (!res.ok) throw new ApiError(res.status, errorText(data, res.status));
  const session = sessionFrom(data, username);
  saveSession(session);
  return session;
}

/** Query string from the defined entries of `params`. */
export function qs(params: Record<string, string | number | undefined | null>): string {
  const entries = Object.entries(params).filter(
    ([, v]) => v !== undefined && v !== null && v !== "",
  );
  if (entries.length === 0) return "";
  return "?" + new URLSearchParams(entries.map(([k, v]) => [k, String(v)])).toString();
}

/** Unwrap a list response that may be a bare array or `{items: [...]}` (paginated). */
export function items<T>(data: unknown): T[] {
  if (Array.isArray(data)) return data as T[];
  if (data && typeof data === "object") {
    for (const key of ["items", "results", "data"]) {
      const v = (data as Record<string, unknown>)[key];
      if (Array.isArray(v)) return v as T[];
    }
  }
  return [];
}

export type ReportFormat = "html" | "pdf";

/** The path of report `id`'s file in `format`, as an attachment when `download`. */
export function reportPath(id: number, format: ReportFormat, download = false): string {
  return `/api/reports/${id}/file${qs({
    format: format === "pdf" ? "pdf" : undefined,
    download: download ? "true" : undefined,
  })}`;
}

/** Fetch a document (HTML or PDF) with the bearer token and open it in a new tab. */
export async function openAuthed(path: string): Promise<void> {
  const session = loadSession();
  const win = window.open("", "_blank");
  const res = await fetch(path, {
    headers: session ? { Authorization: `Bearer ${session.token}` } : {},
  });
  // As bytes: a PDF read as text would be corrupted.
  const blob = await res.blob();
  const url = URL.createObjectURL(
    blob.type ? blob : new Blob([blob], { type: res.headers.get("Content-Type") ?? "text/html" }),
  );
  if (win) win.location.href = url;
  else window.location.href = url;
}

/** Fetch a file with the bearer token and save it under `filename`. */
export async function downloadAuthed(path: string, filename: string): Promise<void> {
  const session = loadSession();
  const res = await fetch(path, {
    headers: session ? { Authorization: `Bearer ${session.token}` } : {},
  });
  if (!res.ok) throw new ApiError(res.status, `download failed (HTTP ${res.status})`);
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
