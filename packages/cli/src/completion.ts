import type { Command } from "commander";

interface Node {
  name: string;
  options: string[];
  subcommands: Node[];
}

function tree(cmd: Command): Node {
  return {
    name: cmd.name(),
    options: cmd.options.flatMap((o) => [o.long, o.short].filter((x): x is string => Boolean(x))).concat("--help"),
    subcommands: cmd.commands.filter((c) => !(c as unknown as { _hidden?: boolean })._hidden).map(tree),
  };
}

/** Words offered after a command path: its subcommands and options (with the program's global options). */
export function completionTable(program: Command): Map<string, string[]> {
  const root = tree(program);
  const globals = root.options;
  const out = new Map<string, string[]>();
  const walk = (n: Node, path: string) => {
    out.set(path, [...n.subcommands.map((c) => c.name), ...new Set([...n.options, ...globals])]);
    for (const c of n.subcommands) walk(c, path ? `${path} ${c.name}` : c.name);
  };
  walk(root, "");
  return out;
}

export function bashCompletion(program: Command): string {
  const table = completionTable(program);
  const cases = [...table.entries()].map(([path, words]) => `    "${path}") words="${words.join(" ")}" ;;`).join("\n");
  return `# bash completion for trainyard: eval "$(trainyard completion bash)"
_trainyard() {
  local cur path w i
  cur="\${COMP_WORDS[COMP_CWORD]}"
  path=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    case "$w" in -*) continue ;; esac
    if _trainyard_words "\${path:+$path }$w" >/dev/null; then path="\${path:+$path }$w"; fi
  done
  COMPREPLY=($(compgen -W "$(_trainyard_words "$path")" -- "$cur"))
}
_trainyard_words() {
  local words
  case "$1" in
${cases}
    *) return 1 ;;
  esac
  echo "$words"
}
complete -o default -F _trainyard trainyard
`;
}

export function zshCompletion(program: Command): string {
  return `#compdef trainyard
# zsh completion for trainyard: eval "$(trainyard completion zsh)"
autoload -U +X bashcompinit && bashcompinit
${bashCompletion(program)}`;
}
