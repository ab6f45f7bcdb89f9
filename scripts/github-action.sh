#!/usr/bin/env bash
# The steps of the GitHub Action (action.yml), one subcommand each, configured by PE_* variables
# that action.yml sets from its inputs; tested by tests/test_github_action.py with the runner's
# files (GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, GITHUB_PATH) in a temporary folder.
#
#   install   a venv of its own in RUNNER_TEMP (runner images may refuse pip into the system
#             Python), probe-engine from PE_INSTALL (default: this action's own checkout, so
#             `uses: ...@v1` runs v1) with PE_EXTRAS; its bin goes on GITHUB_PATH
#   run       probe-engine run: exit status and report folder to GITHUB_OUTPUT, the Markdown
#             report to GITHUB_STEP_SUMMARY; never fails itself, so the upload step still runs
#   verdict   fails with the run's exit status, naming the unmet cells as error annotations
set -uo pipefail

SUMMARY_LIMIT=$((1000 * 1024)) # GitHub refuses a step summary over 1 MiB

install() {
  set -e
  local venv="${RUNNER_TEMP:?}/probe-engine-venv"
  local python="${PE_PYTHON:-python3}"
  local package="${PE_INSTALL:-${GITHUB_ACTION_PATH:?}}"
  if [ -n "${PE_EXTRAS:-}" ]; then
    package="${package}[${PE_EXTRAS}]"
  fi
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$package"
  echo "$venv/bin" >> "${GITHUB_PATH:?}"
  "$venv/bin/probe-engine" --version
}

run() {
  local out="${PE_OUT:-probe-engine-report}"
  local formats="${PE_FORMAT:-json,html,junit,markdown}"
  case ",$formats," in *,markdown,*) ;; *) formats="$formats,markdown" ;; esac
  local name="${PE_NAME:-report}"
  local args=(run "${PE_MATRIX:?the action needs its matrix input}" --out "$out"
    --name "$name" --format "$formats" --fail-on "${PE_FAIL_ON:-unmet}" --no-progress)
  [ -n "${PE_SELECT:-}" ] && args+=(--select "$PE_SELECT")
  [ -n "${PE_TIMEOUT:-}" ] && args+=(--timeout "$PE_TIMEOUT")
  local extra=()
  # PE_ARGS: more options, split on blanks as a shell would (no quotes inside values).
  read -r -a extra <<< "${PE_ARGS:-}"
  local status=0
  probe-engine "${args[@]}" "${extra[@]}" || status=$?
  {
    echo "exit-status=$status"
    echo "report-dir=$out"
  } >> "${GITHUB_OUTPUT:?}"
  local report="$out/$name.md"
  if [ -f "$report" ]; then
    if [ "$(wc -c < "$report")" -le "$SUMMARY_LIMIT" ]; then
      cat "$report" >> "${GITHUB_STEP_SUMMARY:?}"
    else
      {
        head -c "$SUMMARY_LIMIT" "$report" | sed '$d'
        printf '\n\n*The report is larger than a job summary may be: the whole of it is in '
        printf 'the %s artifact.*\n' "${PE_ARTIFACT:-report}"
      } >> "${GITHUB_STEP_SUMMARY:?}"
    fi
  fi
  return 0
}

verdict() {
  local status="${PE_STATUS:-3}"
  local report="${PE_OUT:-probe-engine-report}/${PE_NAME:-report}.json"
  case "$status" in
    0) echo "probe-engine: every expectation met"; return 0 ;;
    1) ;;
    2) echo "::error title=probe-engine::bad input (exit 2): see the run step's log" ;;
    *) echo "::error title=probe-engine::probe-engine failed (exit $status): see the run step's log" ;;
  esac
  if [ "$status" = 1 ] && [ -f "$report" ]; then
    # One annotation per unmet cell (at most 20), read with the venv's Python.
    python - "$report" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1]))
unmet = [c for c in report["cells"] if c.get("met") is False]
failed = [c for c in report["cells"] if c.get("met") is None and c["status"] != "ok"]
listed = unmet + (failed if report.get("fail_on") == "any-failure" else [])
for cell in listed[:20]:
    expected = "/".join(cell.get("expected") or ["ok"])
    print(f"::error title=probe-engine {cell['source']} -> {cell['target']}::"
          f"{cell['status']}, expected {expected} ({cell['endpoint']})")
e = report["summary"]["expectations"]
print(f"probe-engine: {e['unmet']} of {report['summary']['total']} cells unmet "
      f"(fail-on {report.get('fail_on')}); the report is in the job summary and the artifact")
EOF
  fi
  return "$status"
}

case "${1:-}" in
  install | run | verdict) "$1" ;;
  *) echo "usage: $0 install|run|verdict" >&2; exit 2 ;;
esac
