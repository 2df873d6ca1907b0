import { execFileSync } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { shellJoin, shellQuote } from "./shell";

/** Runs `printf '%s\0' <joined>` in a real /bin/sh and returns the words it received. */
function roundTrip(argv: string[]): string[] {
  const out = execFileSync("/bin/sh", ["-c", `printf '%s\\0' ${shellJoin(argv)}`], { encoding: "utf8" });
  const words = out.split("\0");
  words.pop(); // printf ends every word with NUL, so the last piece is empty
  return words;
}

describe("shellQuote", () => {
  it("leaves plain words bare", () => {
    for (const w of ["torchrun", "--nnodes=2", "/srv/a_b/c.d", "host:29500", "a,b", "user@host", "50%", "+x", "-"]) {
      expect(shellQuote(w)).toBe(w);
    }
  });

  it("quotes everything else with single quotes", () => {
    expect(shellQuote("")).toBe("''");
    expect(shellQuote("a b")).toBe("'a b'");
    expect(shellQuote("it's")).toBe("'it'\\''s'");
    expect(shellQuote("$(id)")).toBe("'$(id)'");
    expect(shellQuote("~")).toBe("'~'");
    expect(shellQuote("*")).toBe("'*'");
  });

  it("quotes words that the shell would read as an assignment or a keyword", () => {
    expect(shellQuote("A=1")).toBe("'A=1'");
    expect(shellQuote("if")).toBe("'if'");
    expect(shellQuote("--x=1")).toBe("--x=1");
    expect(roundTrip(["A=1"])).toEqual(["A=1"]);
    // At command position the quoted assignment is a program name, not an assignment.
    expect(() => execFileSync("/bin/sh", ["-c", `${shellJoin(["A=1"])} 2>/dev/null`])).toThrow();
  });

  it("refuses NUL", () => {
    expect(() => shellQuote("a\0b")).toThrow(/NUL/);
  });
});

describe("shellJoin round-trips through a real /bin/sh", () => {
  const nasty = [
    "$(touch /tmp/trainyard-shell-canary)",
    "`touch /tmp/trainyard-shell-canary`",
    "a; touch /tmp/trainyard-shell-canary",
    "a && b || c",
    "it's \"quoted\" and 'single'",
    "'",
    "''",
    "\\",
    "line1\nline2\n",
    "",
    " leading and trailing ",
    "tab\there",
    "ünïcødé ✓ 日本語 🚀",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a literal shell expansion is the point
    "$HOME ${PATH} $1 $@ $$",
    "*.py ? [a-z]",
    "~root",
    "a|b>c<d&e",
    "#not a comment",
    "-n",
    "--flag=value with space",
    "if",
    "X=1",
    "!",
    "{ }",
  ];

  it("returns the exact argv and runs nothing embedded in it", () => {
    rmSync("/tmp/trainyard-shell-canary", { force: true });
    expect(roundTrip(nasty)).toEqual(nasty);
    expect(existsSync("/tmp/trainyard-shell-canary")).toBe(false);
  });

  it("handles each word alone", () => {
    for (const w of nasty) expect(roundTrip([w])).toEqual([w]);
  });

  it("joins an empty argv to an empty line", () => {
    expect(shellJoin([])).toBe("");
  });
});
