import { useState, type FormEvent } from "react";
import { api, items } from "../api";
import { Card, ErrorBox, Table, timeColumn } from "../components/ui";
import { useApi } from "../hooks";
import type { Schema } from "../schema";
import { KillSwitchBanner, type KillSwitch } from "./Overview";

function KillSwitchControl() {
  const ks = useApi<KillSwitch>("/api/risk/kill-switch");
  const [reason, setReason] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const enabled = ks.data?.enabled ?? false;

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!reason.trim()) {
      setError("reason: say why you are switching it " + (enabled ? "off" : "on"));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await api.put("/api/risk/kill-switch", { enabled: !enabled, reason: reason.trim() });
      setReason("");
      ks.reload();
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Card title="Kill switch" testId="kill-switch">
      <KillSwitchBanner ks={ks.data} />
      <ErrorBox error={ks.error} />
      {ks.data && (
        <form className="inline-form" onSubmit={submit} noValidate>
          <input
            name="reason"
            value={reason}
            placeholder="reason (required)"
            aria-label="Reason"
            onChange={(e) => setReason(e.target.value)}
          />
          <button
            type="submit"
            className={enabled ? "" : "danger"}
            disabled={busy}
            data-testid="kill-switch-toggle"
          >
            {enabled ? "Turn kill switch off" : "Turn kill switch ON"}
          </button>
        </form>
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </Card>
  );
}

function Users() {
  const users = useApi<unknown>("/api/users");
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [role, setRole] = useState("viewer");
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const change = async (name: string, patch: Record<string, unknown>) => {
    setError(null);
    setNotice(null);
    try {
      await api.patch(`/api/users/${encodeURIComponent(name)}`, patch);
      setNotice(`Updated ${name}.`);
      users.reload();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    setNotice(null);
    if (password.length > 0 && password.length < 8) {
      setError("password: at least 8 characters");
      return;
    }
    if (!username.trim() || !password) {
      setError("username and password are required");
      return;
    }
    try {
      await api.post("/api/users", { username: username.trim(), password, role });
      setNotice(`Created ${username.trim()} (${role}).`);
      setUsername("");
      setPassword("");
      users.reload();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <Card title="Users" testId="users">
      <ErrorBox error={users.error} />
      <Table
        testId="users-table"
        rows={items<Schema<"UserOut">>(users.data)}
        empty="No users."
        columns={[
          { key: "username", label: "User", render: (r) => String(r.username) },
          {
            key: "role",
            label: "Role",
            render: (r) => <span className={`badge role-${String(r.role)}`}>{String(r.role)}</span>,
          },
          { key: "active", label: "Active", render: (r) => (r.active === false ? "no" : "yes") },
          timeColumn("created_at", "Created"),
          timeColumn("last_login", "Last login"),
          {
            key: "manage",
            label: "",
            render: (r) => (
              <div className="row" data-testid={`manage-${String(r.username)}`}>
                <select
                  value={String(r.role)}
                  aria-label={`Role of ${String(r.username)}`}
                  onChange={(e) => void change(String(r.username), { role: e.target.value })}
                >
                  <option value="viewer">viewer</option>
                  <option value="trader">trader</option>
                  <option value="admin">admin</option>
                </select>
                <button
                  type="button"
                  className="small secondary"
                  onClick={() => void change(String(r.username), { active: r.active === false })}
                >
                  {r.active === false ? "Enable" : "Disable"}
                </button>
              </div>
            ),
          },
        ]}
      />
      <form className="inline-form" onSubmit={submit} data-testid="new-user" noValidate>
        <input
          name="new-username"
          value={username}
          placeholder="username"
          aria-label="New username"
          onChange={(e) => setUsername(e.target.value)}
        />
        <input
          name="new-password"
          type="password"
          value={password}
          placeholder="password"
          aria-label="New password"
          autoComplete="new-password"
          onChange={(e) => setPassword(e.target.value)}
        />
        <select
          name="new-role"
          value={role}
          onChange={(e) => setRole(e.target.value)}
          aria-label="Role"
        >
          <option value="viewer">viewer</option>
          <option value="trader">trader</option>
          <option value="admin">admin</option>
        </select>
        <button type="submit" className="small">
          Add user
        </button>
      </form>
      {notice && (
        <p className="notice" role="status">
          {notice}
        </p>
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </Card>
  );
}

function SettingsView() {
  const settings = useApi<Record<string, unknown>>("/api/settings");
  const rows = Object.entries(settings.data ?? {}).map(([name, value]) => ({ name, value }));
  return (
    <Card title="Running settings" testId="settings">
      <ErrorBox error={settings.error} />
      <Table
        testId="settings-table"
        rows={rows}
        empty="No settings reported."
        rowKey={(r) => r.name}
        columns={[
          { key: "name", label: "Setting", render: (r) => <code>{r.name}</code> },
          {
            key: "value",
            label: "Value",
            render: (r) => (
              <code className="wrap">
                {typeof r.value === "string" ? r.value : JSON.stringify(r.value)}
              </code>
            ),
          },
        ]}
      />
    </Card>
  );
}

export function Admin() {
  return (
    <div className="page">
      <h1>Administration</h1>
      <KillSwitchControl />
      <Users />
      <SettingsView />
    </div>
  );
}
