# Sourced by scripts/test and scripts/demo: makes .venv with the project installed, and the brokers.
# Idempotent and non-interactive; safe to run on a fresh machine of this kind.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Debian's packages: mosquitto (the reference broker), ejabberd, whose mod_mqtt serves MQTT 5
# over WebSocket, which Debian's mosquitto is built without (docs/transports.md), and
# nats-server, an MQTT 3.1.1 broker that refuses QoS 2 by closing the connection.
install_brokers() {
    local missing=()
    command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
    command -v mosquitto_pub >/dev/null 2>&1 || missing+=(mosquitto-clients)
    command -v ejabberdctl >/dev/null 2>&1 || [ -x /usr/sbin/ejabberdctl ] || missing+=(ejabberd)
    command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || missing+=(nats-server)
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "bootstrap: installing ${missing[*]} from Debian's packages" >&2
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

make_venv() {
    local stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
    if [ ! -x .venv/bin/python ]; then
        python3 -m venv .venv
    fi
    if [ ! -f "$stamp" ]; then
        echo "bootstrap: installing Python dependencies into .venv" >&2
        .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
        .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]' 2>&1 | grep -v "^WARNING: Location" >&2 || true
        .venv/bin/python -c "import trio_mqtt, trio, pytest, hypothesis, trustme" 
        rm -f .venv/.installed-*
        touch "$stamp"
    fi
}

install_brokers
make_venv
# Debian installs mosquitto under /usr/sbin, which is not on every user's PATH.
export PATH="$PATH:/usr/sbin"
