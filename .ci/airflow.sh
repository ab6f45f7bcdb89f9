#!/usr/bin/env bash
# Installs a real Airflow in a virtual environment of its own, with probe-engine, for the tests
# in tests/test_airflow_*.py (marker `airflow`). Airflow pins hundreds of packages that must not
# leak into the project's .venv, hence one venv per Airflow line.
#
#   .ci/airflow.sh [REPO]            REPO defaults to this script's repository
#
#   PE_AIRFLOW_VERSIONS  Airflow lines to install, space-separated (default: "3 2.10")
#   PE_AIRFLOW_ROOT      where the venvs go (default: /opt/pe-airflow): $PE_AIRFLOW_ROOT/3 ...
#   PYTHON               the interpreter to build the venvs from (default: python3)
#
# The tests read the same two variables, so export them for pytest too if you change them.
# A venv that already imports the wanted Airflow line is kept (a re-run takes seconds);
# probe-engine is re-installed from REPO each time, editable, and the tests also put REPO first
# on PYTHONPATH, so the venv always runs the checkout under test.
# Measured here: ~45 s and ~350 MB per line from PyPI (Airflow 3.3.2, 2.10.5).
set -euo pipefail

repo="$(cd "${1:-$(dirname "$0")/..}" && pwd)"
root="${PE_AIRFLOW_ROOT:-/opt/pe-airflow}"
versions="${PE_AIRFLOW_VERSIONS:-3 2.10}"
python="${PYTHON:-python3}"

pip_quietly() {
  # This machine's pip configuration names local indexes that may not exist: pip warns about
  # each one for every package. The warnings say nothing about the install; errors still show.
  local venv="$1"
  shift
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@" 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }
}

for line in $versions; do
  case "$line" in
    3) spec="apache-airflow==3.*" ;;
    *) spec="apache-airflow==$line.*" ;;
  esac
  venv="$root/$line"
  started=$(date +%s)
  if "$venv/bin/python" -c "import airflow, sys; sys.exit(not airflow.__version__.startswith('$line.'))" 2>/dev/null; then
    echo "airflow.sh: keeping $venv"
  else
    echo "airflow.sh: installing $spec into $venv"
    rm -rf "$venv"
    mkdir -p "$root"
    "$python" -m venv "$venv"
    # A current pip resolves Airflow's tree markedly faster than the one venv seeds.
    pip_quietly "$venv" --upgrade pip
    # The machine-wide pip constraint file (/etc/xdg/pip) caps only torch, which Airflow does
    # not pull in; no Airflow constraint file is fetched (that needs GitHub): pip resolves
    # within Airflow's own declared ranges, which is what a plain `pip install` user gets.
    pip_quietly "$venv" "$spec"
  fi
  # Re-install probe-engine (editable) only when the checkout or its dependencies changed.
  stamp="$repo $(sha256sum "$repo/pyproject.toml" | cut -d' ' -f1)"
  if [ "$(cat "$venv/.probe-engine-stamp" 2>/dev/null)" != "$stamp" ]; then
    # With every extra but Airflow: the provider's DAG probes docker and kubernetes-service
    # cells through Airflow connections (tests/airflow_dags/pe_provider.py).
    pip_quietly "$venv" -e "$repo[all]"
    echo "$stamp" > "$venv/.probe-engine-stamp"
  fi
  "$venv/bin/python" -W ignore -c "import airflow, probe_engine.integrations.diagnostics; print('airflow.sh: Airflow', airflow.__version__, 'with probe-engine from $repo')"
  echo "airflow.sh: $venv ready in $(( $(date +%s) - started ))s, $(du -sh "$venv" | cut -f1)"
done
