# Sourced by the scripts for a lent GPU machine (benchmarks/gpu_check.sh, models/ocr/gpu_run.sh):
# that machine's image runs Python 3.12 without pydantic (firmware.config) and reaches no index,
# so the wheels travel in .whl/ (a carried, git-ignored folder).
# fetch_device_wheels: here, the wheels at the versions this venv has ($PY), for the machine's Python.
# install_device_wheels: there, into /tmp/site on PYTHONPATH (nothing to do without .whl/).

fetch_device_wheels() {
    local pins
    pins=$($PY -m pip list --format=freeze 2>/dev/null |
        grep -i -E '^(pydantic|pydantic[-_]core|annotated[-_]types|typing[-_]inspection)==')
    # shellcheck disable=SC2086
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl $pins
}

install_device_wheels() {
    compgen -G ".whl/*.whl" > /dev/null || return 0
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site
}
