/**
 * The one quoting function of the product. Every value that reaches a remote shell line goes
 * through shellQuote; nothing is ever pasted into a command unquoted.
 */

/** Words made only of these characters mean the same quoted or not, so they stay bare for readability. */
const BARE_WORD = /^[A-Za-z0-9_./:=@%+,-]+$/;
/** A bare `NAME=value` as the first word would be a variable assignment, not a command. */
const ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*=/;
/** Reserved words change meaning at command position (POSIX, plus bash's). */
const RESERVED_WORDS = new Set([
  "case",
  "do",
  "done",
  "elif",
  "else",
  "esac",
  "fi",
  "for",
  "function",
  "if",
  "in",
  "select",
  "then",
  "time",
  "until",
  "while",
]);

/** POSIX single-quoting: the shell reads the result back as exactly `s`, one word. */
export function shellQuote(s: string): string {
  // No argv entry, env value or path can hold NUL; refuse rather than let the kernel truncate it.
  if (s.includes("\0")) throw new Error("cannot pass a NUL character through a shell");
  if (BARE_WORD.test(s) && !ASSIGNMENT.test(s) && !RESERVED_WORDS.has(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** One shell command line that runs `argv` exactly as given. */
export function shellJoin(argv: readonly string[]): string {
  return argv.map(shellQuote).join(" ");
}
