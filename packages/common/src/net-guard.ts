import { lookup } from "node:dns/promises";
import { BlockList, isIP } from "node:net";

/**
 * SSRF guard for outbound alert deliveries: a channel URL must not reach private, loopback,
 * link-local, unique-local, CGNAT, multicast or unspecified addresses, unless an operator
 * allowlists the host name or a CIDR (ALERT_ALLOWED_HOSTS). Checked when a channel is saved and
 * again at every delivery, on the address actually connected to (no DNS rebinding).
 */

const BLOCKED_V4: Array<[string, number]> = [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.0.2.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["198.51.100.0", 24],
  ["203.0.113.0", 24],
  ["224.0.0.0", 4],
  ["240.0.0.0", 4],
];
const BLOCKED_V6: Array<[string, number]> = [
  ["::", 128],
  ["::1", 128],
  ["fc00::", 7],
  ["fe80::", 10],
  ["fec0::", 10],
  ["ff00::", 8],
  ["2001:db8::", 32],
  ["64:ff9b::", 96],
  ["100::", 64],
];

const blocked = new BlockList();
for (const [net, prefix] of BLOCKED_V4) blocked.addSubnet(net, prefix, "ipv4");
for (const [net, prefix] of BLOCKED_V6) blocked.addSubnet(net, prefix, "ipv6");

/** IPv4-mapped IPv6 (::ffff:10.0.0.1) is judged as the IPv4 address it maps. */
function normalise(ip: string): { ip: string; family: "ipv4" | "ipv6" } {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (m) return { ip: m[1]!, family: "ipv4" };
  return { ip, family: isIP(ip) === 6 ? "ipv6" : "ipv4" };
}

export function isPrivateAddress(ip: string): boolean {
  const n = normalise(ip);
  return blocked.check(n.ip, n.family);
}

export interface HostAllowlist {
  hosts: Set<string>;
  nets: BlockList;
  /** The entries as configured, for messages. */
  entries: string[];
}

/**
 * Parse ALERT_ALLOWED_HOSTS: comma-separated host names (exact, case-insensitive), IP addresses or
 * CIDRs. Throws on a malformed entry.
 */
export function parseAllowlist(value: string | undefined): HostAllowlist {
  const list: HostAllowlist = { hosts: new Set(), nets: new BlockList(), entries: [] };
  for (const raw of (value ?? "").split(",")) {
    const entry = raw.trim();
    if (!entry) continue;
    list.entries.push(entry);
    const [addr, prefix] = entry.split("/");
    if (addr && isIP(addr)) {
      const family = isIP(addr) === 6 ? "ipv6" : "ipv4";
      const bits = prefix === undefined ? (family === "ipv6" ? 128 : 32) : Number(prefix);
      if (!Number.isInteger(bits) || bits < 0 || bits > (family === "ipv6" ? 128 : 32))
        throw new Error(`'${entry}' is not a valid CIDR`);
      list.nets.addSubnet(addr, bits, family);
    } else if (prefix === undefined && /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(entry)) {
      list.hosts.add(entry.toLowerCase());
    } else {
      throw new Error(`'${entry}' is neither a host name, an IP address nor a CIDR`);
    }
  }
  return list;
}

export function addressAllowed(ip: string, hostname: string, allow: HostAllowlist): boolean {
  if (allow.hosts.has(hostname.toLowerCase())) return true;
  const n = normalise(ip);
  if (allow.nets.check(n.ip, n.family)) return true;
  return !isPrivateAddress(ip);
}

export class BlockedAddressError extends Error {
  constructor(hostname: string, ip: string) {
    super(
      `${hostname} resolves to ${ip}, a private, loopback or link-local address; an operator can allow it with ALERT_ALLOWED_HOSTS`,
    );
    this.name = "BlockedAddressError";
  }
}

/** URL host without IPv6 brackets. */
export function urlHostname(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, "$1");
}

/**
 * Check a URL before it is stored: every address its host resolves to must be allowed.
 * Returns a reason when it is refused, undefined when it is fine. A host that does not resolve is
 * refused too (it could not receive alerts).
 */
export async function checkOutboundUrl(
  url: string,
  allow: HostAllowlist,
  resolve: (host: string) => Promise<string[]> = resolveAll,
): Promise<string | undefined> {
  const parsed = new URL(url);
  const host = urlHostname(parsed);
  let ips: string[];
  try {
    ips = isIP(host) ? [host] : await resolve(host);
  } catch (err) {
    return `cannot resolve ${host}: ${(err as Error).message}`;
  }
  if (!ips.length) return `cannot resolve ${host}`;
  const bad = ips.find((ip) => !addressAllowed(ip, host, allow));
  return bad ? new BlockedAddressError(host, bad).message : undefined;
}

export async function resolveAll(host: string): Promise<string[]> {
  return (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);
}
