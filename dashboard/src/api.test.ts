import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadSession, saveSession, type Session } from "./api";

class MemoryStorage {
  private data = new Map<string, string>();
  getItem(k: string) {
    return this.data.get(k) ?? null;
  }
  setItem(k: string, v: string) {
    this.data.set(k, v);
  }
  removeItem(k: string) {
    this.data.delete(k);
  }
}

const inMinutes = (m: number) => new Date(Date.now() + m * 60_000).toISOString();

const base: Session = {
  token: "t",
  username: "u",
  role: "viewer",
  expiresAt: inMinutes(5),
  refreshToken: "r",
  refreshExpiresAt: inMinutes(60),
};

describe("stored session", () => {
  beforeEach(() => {
    (globalThis as { localStorage?: unknown }).localStorage = new MemoryStorage();
  });
  afterEach(() => {
    delete (globalThis as { localStorage?: unknown }).localStorage;
  });

  it("round-trips and clears", () => {
    saveSession(base);
    expect(loadSession()).toEqual(base);
    saveSession(null);
    expect(loadSession()).toBeNull();
  });

  it("keeps a session whose access token expired while the refresh token is valid", () => {
    saveSession({ ...base, expiresAt: inMinutes(-1) });
    expect(loadSession()?.refreshToken).toBe("r");
  });

  it("drops a session when both tokens expired, or the access token without a refresh", () => {
    saveSession({ ...base, expiresAt: inMinutes(-1), refreshExpiresAt: inMinutes(-1) });
    expect(loadSession()).toBeNull();
    saveSession({ ...base, expiresAt: inMinutes(-1), refreshToken: null });
    expect(loadSession()).toBeNull();
  });

  it("treats unreadable storage as signed out", () => {
    localStorage.setItem("sigma.session", "{not json");
    expect(loadSession()).toBeNull();
  });
});
