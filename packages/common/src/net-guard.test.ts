import { describe, expect, it } from "vitest";
import { addressAllowed, checkOutboundUrl, isPrivateAddress, parseAllowlist } from "./net-guard";

describe("the SSRF guard", () => {
  it("classifies private, loopback, link-local and friends as private", () => {
    for (const ip of [
      "10.1.2.3",
      "127.0.0.1",
      "127.9.9.9",
      "169.254.169.254",
      "172.16.0.1",
      "172.31.255.255",
      "192.168.1.1",
      "100.64.0.1",
      "0.0.0.0",
      "::1",
      "fe80::1",
      "fd00::1",
      "::ffff:10.0.0.1",
      "::ffff:127.0.0.1",
      "224.0.0.1",
    ])
      expect(isPrivateAddress(ip), ip).toBe(true);
    for (const ip of ["8.8.8.8", "172.32.0.1", "1.1.1.1", "2606:4700:4700::1111"]) expect(isPrivateAddress(ip), ip).toBe(false);
  });

  it("lets an operator allowlist host names, addresses and CIDRs", () => {
    const allow = parseAllowlist(" hooks.internal , 127.0.0.1, 10.20.0.0/16 ,fd12::/16");
    expect(addressAllowed("10.0.0.5", "hooks.internal", allow)).toBe(true);
    expect(addressAllowed("127.0.0.1", "127.0.0.1", allow)).toBe(true);
    expect(addressAllowed("127.0.0.2", "127.0.0.2", allow)).toBe(false);
    expect(addressAllowed("10.20.3.4", "x", allow)).toBe(true);
    expect(addressAllowed("10.21.3.4", "x", allow)).toBe(false);
    expect(addressAllowed("fd12::5", "x", allow)).toBe(true);
    expect(() => parseAllowlist("10.0.0.0/33")).toThrow(/CIDR/);
    expect(() => parseAllowlist("bad host!")).toThrow(/neither/);
  });

  it("checks every address a URL's host resolves to", async () => {
    const none = parseAllowlist("");
    const resolver = (map: Record<string, string[]>) => async (h: string) => map[h] ?? [];
    expect(await checkOutboundUrl("https://example.com/x", none, resolver({ "example.com": ["93.184.216.34"] }))).toBeUndefined();
    expect(
      await checkOutboundUrl("https://rebind.test/x", none, resolver({ "rebind.test": ["93.184.216.34", "10.0.0.1"] })),
    ).toMatch(/10\.0\.0\.1.*ALERT_ALLOWED_HOSTS/);
    expect(await checkOutboundUrl("http://169.254.169.254/latest", none)).toMatch(/private, loopback or link-local/);
    expect(await checkOutboundUrl("http://[::1]:8080/", none)).toMatch(/::1/);
    expect(await checkOutboundUrl("https://nowhere.invalid/", none, resolver({}))).toMatch(/cannot resolve/);
    expect(await checkOutboundUrl("http://127.0.0.1:9/", parseAllowlist("127.0.0.1"))).toBeUndefined();
  });
});
