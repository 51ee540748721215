#!/usr/bin/env bash
# Runs a real Apache Kafka broker (single-node KRaft, combined broker and
# controller) on 127.0.0.1 for the integration tests and the local demo.
#
#   test/kafka/broker.sh start    fetch Kafka (once, via Maven), start it, wait until it serves
#   test/kafka/broker.sh stop     stop it (SIGTERM, then SIGKILL after a grace period); idempotent
#   test/kafka/broker.sh status   print the bootstrap address; exit 0 only when running
#   test/kafka/broker.sh restart  stop, then start
#
# With KAFKA_KEEP_DATA=1, stop and start keep the broker's state, to stop a broker
# and start it again on the same data (a broker restart, as clients see one):
# stop keeps the data directory, server.properties, the security material and
# the bootstrap and env files; start runs the broker again from them — the same
# cluster, topics, committed offsets and ports, so the same bootstrap address
# (start fails if one of the ports was taken meanwhile, or if nothing was kept).
# restart with it is a stop and a start on the same data.
#
#   KAFKA_KEEP_DATA=1 test/kafka/broker.sh stop    # ... later:
#   KAFKA_KEEP_DATA=1 test/kafka/broker.sh start
#
# Environment:
#   KAFKA_CACHE_DIR  where the Kafka jars are kept between runs
#                    (default: $HOME/.cache/seldon-kafka-sidecar/kafka-3.8.1)
#   KAFKA_STATE_DIR  per-run state: server.properties, data/, broker.log, pid,
#                    bootstrap, env (default: <repo root>/.kafka)
#   KAFKA_JVM_OPTS   JVM options for the broker (default: -Xms256m -Xmx512m ...)
#   KAFKA_START_TIMEOUT  seconds to wait for the broker to come up (default 120: a busy shared machine needs it)
#   KAFKA_STOP_TIMEOUT   seconds to wait after SIGTERM before SIGKILL (default 20)
#   KAFKA_EXTRA_PROPERTIES  more server.properties lines, newline-separated, appended last
#                    (not read by a start with KAFKA_KEEP_DATA=1: it reuses the kept file)
#   KAFKA_KEEP_DATA  1: stop and start keep the broker's data and address (see above)
#
# After a successful start, <state dir>/bootstrap holds one line
# "127.0.0.1:PORT" (the PLAINTEXT listener) and <state dir>/env holds
# KEY=VALUE lines (source it, or let internal/testkit read it):
#
#   KAFKA_TEST_BOOTSTRAP                 PLAINTEXT listener
#   KAFKA_TEST_SASL_PLAINTEXT_BOOTSTRAP  SASL_PLAINTEXT: PLAIN, SCRAM-SHA-512, OAUTHBEARER (unsecured JWT)
#   KAFKA_TEST_SSL_BOOTSTRAP             SSL, server authentication only (one-way TLS)
#   KAFKA_TEST_MTLS_BOOTSTRAP            SSL with ssl.client.auth=required (mTLS)
#   KAFKA_TEST_SASL_SSL_BOOTSTRAP        SASL_SSL: PLAIN, SCRAM-SHA-512
#   KAFKA_TEST_CA_CERT, KAFKA_TEST_CA_KEY  the test CA (PEM files): it signed the
#                                        broker's certificate, and the mTLS
#                                        listener trusts client certificates it signs
#   KAFKA_TEST_PLAIN_USER, KAFKA_TEST_PLAIN_PASSWORD    a SASL/PLAIN user
#   KAFKA_TEST_SCRAM_USER, KAFKA_TEST_SCRAM_PASSWORD    a SCRAM-SHA-512 user
#
# SCRAM-SHA-256 is deliberately enabled on no listener. The CA, the broker's
# key and certificate, and the passwords are made anew by every start (openssl)
# in <state dir>/security; nothing secret is kept in the repository. The
# broker's certificate names 127.0.0.1 and localhost. Every listener is on
# 127.0.0.1. The StandardAuthorizer is on with allow.everyone.if.no.acl.found
# and User:ANONYMOUS (PLAINTEXT) as super user, so tests may add ACLs for the
# principals of the secured listeners without touching anyone else. The
# bootstrap and env files are removed by stop. Every start formats a fresh
# data directory, unless KAFKA_KEEP_DATA=1.
#
# Topics are NOT auto-created (auto.create.topics.enable=false): tests create
# the topics they use, and a wrong topic name is an error.
set -euo pipefail

readonly KAFKA_VERSION=3.8.1
SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
readonly SCRIPT_DIR
REPO_ROOT="$(cd -- "${SCRIPT_DIR}/../.." && pwd -P)"
readonly REPO_ROOT

# Without $HOME (some CI shells), cache inside the repo (.cache is git-ignored).
readonly CACHE_DIR="${KAFKA_CACHE_DIR:-${HOME:-${REPO_ROOT}}/.cache/seldon-kafka-sidecar/kafka-${KAFKA_VERSION}}"
readonly LIBS_DIR="${CACHE_DIR}/libs"
# Written after a successful Maven copy; holds the checksum of pom.xml so
# that a changed pom triggers a new download.
readonly LIBS_MARKER="${CACHE_DIR}/libs.complete"

readonly STATE_DIR="${KAFKA_STATE_DIR:-${REPO_ROOT}/.kafka}"
readonly PROPS_FILE="${STATE_DIR}/server.properties"
readonly DATA_DIR="${STATE_DIR}/data"
readonly LOG_FILE="${STATE_DIR}/broker.log"
readonly PID_FILE="${STATE_DIR}/pid"
readonly BOOTSTRAP_FILE="${STATE_DIR}/bootstrap"
readonly ENV_FILE="${STATE_DIR}/env"
readonly LOCK_FILE="${STATE_DIR}/lock"
readonly SEC_DIR="${STATE_DIR}/security"

readonly KEEP_DATA="${KAFKA_KEEP_DATA:-}"
readonly START_TIMEOUT="${KAFKA_START_TIMEOUT:-120}"
readonly STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-20}"
# The tests move 64 MB records. The JDK reads a socket into a heap buffer through a temporary direct
# buffer as large as the read, and keeps it cached in the reading thread for the next read: with a few
# network threads each keeping 64 MB, the direct memory (by default as large as -Xmx, 512 MB) ran out
# and the broker stopped answering ("Cannot reserve 64000331 bytes of direct buffer memory"). Freeing
# them after use instead (jdk.nio.maxCachedBufferSize) allocates and zeroes 64 MB at every read of a
# large request, which slowed writes so much that producing 1 GB timed out. So the cap is raised:
# reserved, not used, until the buffers exist.
readonly JVM_OPTS="${KAFKA_JVM_OPTS:--Xms256m -Xmx512m -XX:MaxDirectMemorySize=2g -XX:+UseSerialGC -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true}"
# How often start retries with new ports when one was taken in the meantime.
readonly START_ATTEMPTS=3

readonly HOST=127.0.0.1
readonly NODE_ID=1
# Logged by KafkaRaftServer once the broker serves requests.
readonly STARTED_LINE='Kafka Server started'

log() { printf 'broker.sh: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

usage() {
	cat >&2 <<EOF
usage: $(basename -- "$0") start|stop|status|restart

  start    fetch Kafka ${KAFKA_VERSION} (first run only), start a single-node KRaft
           broker on ${HOST}, wait until it serves; no-op if already running
  stop     stop the broker started by 'start' (idempotent)
  status   print the bootstrap address and exit 0 if running, exit 1 otherwise
  restart  stop, then start

KAFKA_KEEP_DATA=1: stop keeps the data, ports and security material, and start
runs the broker again on them (same bootstrap address): a restart on the same data.

state dir: ${STATE_DIR}
cache dir: ${CACHE_DIR}
EOF
}

need() {
	local cmd
	for cmd in "$@"; do
		command -v "${cmd}" >/dev/null 2>&1 || die "'${cmd}' is required but not on PATH"
	done
}

# ---------------------------------------------------------------------------
# Locking: start/stop of one state dir, and the download into one cache dir,
# are serialised with flock(1). The broker itself must not inherit the lock
# file descriptors (see launch_broker).
# ---------------------------------------------------------------------------
readonly STATE_LOCK_FD=9
readonly CACHE_LOCK_FD=8

lock_state() {
	mkdir -p -- "${STATE_DIR}"
	exec 9>"${LOCK_FILE}"
	flock -w 180 "${STATE_LOCK_FD}" || die "timed out waiting for lock ${LOCK_FILE}"
}

lock_cache() {
	mkdir -p -- "${CACHE_DIR}"
	exec 8>"${CACHE_DIR}/lock"
	flock -w 600 "${CACHE_LOCK_FD}" || die "timed out waiting for lock ${CACHE_DIR}/lock"
}

unlock_cache() {
	exec 8>&-
}

# ---------------------------------------------------------------------------
# Download
# ---------------------------------------------------------------------------
pom_checksum() {
	sha256sum -- "${SCRIPT_DIR}/pom.xml" | cut -d' ' -f1
}

libs_complete() {
	[[ -f "${LIBS_MARKER}" && -d "${LIBS_DIR}" ]] || return 1
	[[ "$(cat -- "${LIBS_MARKER}")" == "$(pom_checksum)" ]] || return 1
	compgen -G "${LIBS_DIR}/kafka_2.13-${KAFKA_VERSION}.jar" >/dev/null
}

fetch_libs() {
	if libs_complete; then
		log "using cached Kafka ${KAFKA_VERSION} jars in ${LIBS_DIR}"
		return 0
	fi
	need mvn
	lock_cache
	if libs_complete; then # fetched by a concurrent run while we waited
		unlock_cache
		log "using cached Kafka ${KAFKA_VERSION} jars in ${LIBS_DIR}"
		return 0
	fi
	log "fetching Kafka ${KAFKA_VERSION} and its runtime dependencies with Maven into ${LIBS_DIR}"
	local tmp="${CACHE_DIR}/libs.tmp.$$"
	rm -rf -- "${tmp}"
	# Maven's output goes to a file, shown only on failure (Debian's Maven
	# 3.8 prints stray colour codes even with -q -B).
	local mvn_log="${CACHE_DIR}/mvn.log"
	if ! mvn -q -B -f "${SCRIPT_DIR}/pom.xml" dependency:copy-dependencies \
		-DincludeScope=runtime -DoutputDirectory="${tmp}" >"${mvn_log}" 2>&1; then
		cat -- "${mvn_log}" >&2
		rm -rf -- "${tmp}"
		unlock_cache
		die "Maven could not fetch the Kafka jars (output above, also in ${mvn_log})"
	fi
	[[ -f "${tmp}/kafka_2.13-${KAFKA_VERSION}.jar" ]] || {
		rm -rf -- "${tmp}"
		unlock_cache
		die "Maven finished but ${tmp}/kafka_2.13-${KAFKA_VERSION}.jar is missing"
	}
	rm -f -- "${LIBS_MARKER}"
	rm -rf -- "${LIBS_DIR}"
	mv -- "${tmp}" "${LIBS_DIR}"
	pom_checksum >"${LIBS_MARKER}"
	unlock_cache
	log "fetched $(find "${LIBS_DIR}" -maxdepth 1 -name '*.jar' | wc -l) jars"
}

# ---------------------------------------------------------------------------
# Ports and listeners
# ---------------------------------------------------------------------------

# free_ports N: prints N distinct free TCP ports on ${HOST}, one per line.
# All sockets are held open together, so the ports differ from each other.
free_ports() {
	python3 - "$1" "${HOST}" <<'EOF'
import socket, sys
n, host = int(sys.argv[1]), sys.argv[2]
socks = []
for _ in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((host, 0))
    socks.append(s)
for s in socks:
    print(s.getsockname()[1])
for s in socks:
    s.close()
EOF
}

# Client-facing listeners, one "NAME SECURITY_PROTOCOL" per entry. The first
# one is the bootstrap written to ${BOOTSTRAP_FILE} and the inter-broker
# listener. Each secured one has its settings in listener_extra_properties and
# its address in the env file as KAFKA_TEST_<NAME>_BOOTSTRAP.
CLIENT_LISTENERS=(
	"PLAINTEXT PLAINTEXT"
	"SASL_PLAINTEXT SASL_PLAINTEXT"
	"SSL SSL"
	"MTLS SSL"
	"SASL_SSL SASL_SSL"
)
readonly CONTROLLER_LISTENER=CONTROLLER

# Filled by assign_ports: listener name -> port.
declare -A LISTENER_PORT=()

assign_ports() {
	local -a names=()
	local entry name
	for entry in "${CLIENT_LISTENERS[@]}"; do
		names+=("${entry%% *}")
	done
	names+=("${CONTROLLER_LISTENER}")
	local -a ports=()
	mapfile -t ports < <(free_ports "${#names[@]}")
	[[ "${#ports[@]}" -eq "${#names[@]}" ]] || die "could not pick ${#names[@]} free ports"
	local i
	for i in "${!names[@]}"; do
		LISTENER_PORT["${names[i]}"]="${ports[i]}"
	done
}

# Prints the listener-related server.properties lines.
listener_properties() {
	local -a listeners=() advertised=() protocol_map=()
	local entry name proto port
	for entry in "${CLIENT_LISTENERS[@]}"; do
		name="${entry%% *}"
		proto="${entry#* }"
		port="${LISTENER_PORT[${name}]}"
		listeners+=("${name}://${HOST}:${port}")
		advertised+=("${name}://${HOST}:${port}")
		protocol_map+=("${name}:${proto}")
	done
	listeners+=("${CONTROLLER_LISTENER}://${HOST}:${LISTENER_PORT[${CONTROLLER_LISTENER}]}")
	protocol_map+=("${CONTROLLER_LISTENER}:PLAINTEXT")

	local IFS=,
	printf 'listeners=%s\n' "${listeners[*]}"
	printf 'advertised.listeners=%s\n' "${advertised[*]}"
	printf 'listener.security.protocol.map=%s\n' "${protocol_map[*]}"
	printf 'inter.broker.listener.name=%s\n' "${CLIENT_LISTENERS[0]%% *}"
	printf 'controller.listener.names=%s\n' "${CONTROLLER_LISTENER}"
	printf 'controller.quorum.voters=%s@%s:%s\n' "${NODE_ID}" "${HOST}" "${LISTENER_PORT[${CONTROLLER_LISTENER}]}"
	listener_extra_properties
}

# Per-listener security settings (SASL mechanisms, JAAS, keystores) and the
# authorizer. make_security_material must have run.
listener_extra_properties() {
	local plain_jaas scram_jaas oauth_jaas l
	plain_jaas="org.apache.kafka.common.security.plain.PlainLoginModule required user_${PLAIN_USER}=\"${PLAIN_PASSWORD}\";"
	scram_jaas='org.apache.kafka.common.security.scram.ScramLoginModule required;'
	# No callback handler: the broker's default for OAUTHBEARER validates
	# unsecured (alg "none") JWTs, enough to test the client side of OIDC.
	oauth_jaas='org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;'

	printf 'listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-512,OAUTHBEARER\n'
	printf 'listener.name.sasl_plaintext.plain.sasl.jaas.config=%s\n' "${plain_jaas}"
	printf 'listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=%s\n' "${scram_jaas}"
	printf 'listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config=%s\n' "${oauth_jaas}"

	printf 'listener.name.sasl_ssl.sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-512\n'
	printf 'listener.name.sasl_ssl.plain.sasl.jaas.config=%s\n' "${plain_jaas}"
	printf 'listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=%s\n' "${scram_jaas}"

	for l in ssl mtls sasl_ssl; do
		printf 'listener.name.%s.ssl.keystore.type=PEM\n' "${l}"
		printf 'listener.name.%s.ssl.keystore.location=%s\n' "${l}" "${SEC_DIR}/server.keystore.pem"
		printf 'listener.name.%s.ssl.truststore.type=PEM\n' "${l}"
		printf 'listener.name.%s.ssl.truststore.location=%s\n' "${l}" "${SEC_DIR}/ca.crt"
	done
	printf 'listener.name.ssl.ssl.client.auth=none\n'
	printf 'listener.name.mtls.ssl.client.auth=required\n'
	printf 'listener.name.sasl_ssl.ssl.client.auth=none\n'

	printf 'authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer\n'
	printf 'allow.everyone.if.no.acl.found=true\n'
	printf 'super.users=User:ANONYMOUS\n'
}

# random_secret: prints 24 random URL-safe characters.
random_secret() {
	python3 -c 'import secrets; print(secrets.token_urlsafe(18))'
}

# make_security_material: a fresh CA, the broker's key and certificate (for
# 127.0.0.1 and localhost) signed by it, and fresh SASL passwords, in
# ${SEC_DIR} (mode 700). Sets PLAIN_USER, PLAIN_PASSWORD, SCRAM_USER,
# SCRAM_PASSWORD.
make_security_material() {
	need openssl
	rm -rf -- "${SEC_DIR}"
	mkdir -p -- "${SEC_DIR}"
	chmod 700 "${SEC_DIR}"
	local d="${SEC_DIR}" out="${SEC_DIR}/openssl.log"
	if ! {
		openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=seldon-kafka-sidecar test CA' \
			-keyout "${d}/ca.key" -out "${d}/ca.crt" &&
			openssl req -newkey rsa:2048 -nodes -subj '/CN=localhost' \
				-keyout "${d}/server.key" -out "${d}/server.csr" &&
			printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' >"${d}/server.ext" &&
			openssl x509 -req -in "${d}/server.csr" -CA "${d}/ca.crt" -CAkey "${d}/ca.key" -CAcreateserial \
				-days 2 -extfile "${d}/server.ext" -out "${d}/server.crt"
	} >"${out}" 2>&1; then
		cat -- "${out}" >&2
		die "making the test certificates failed"
	fi
	# Kafka's PEM keystore: the PKCS#8 key, then the certificate chain.
	cat -- "${d}/server.key" "${d}/server.crt" >"${d}/server.keystore.pem"
	chmod 600 "${d}"/*
	PLAIN_USER=plain-user
	PLAIN_PASSWORD="$(random_secret)"
	SCRAM_USER=scram-user
	SCRAM_PASSWORD="$(random_secret)"
}

write_env() {
	local entry name
	{
		printf 'KAFKA_TEST_BOOTSTRAP=%s\n' "$(bootstrap_address)"
		for entry in "${CLIENT_LISTENERS[@]:1}"; do
			name="${entry%% *}"
			printf 'KAFKA_TEST_%s_BOOTSTRAP=%s:%s\n' "${name}" "${HOST}" "${LISTENER_PORT[${name}]}"
		done
		printf 'KAFKA_TEST_CA_CERT=%s\n' "${SEC_DIR}/ca.crt"
		printf 'KAFKA_TEST_CA_KEY=%s\n' "${SEC_DIR}/ca.key"
		printf 'KAFKA_TEST_PLAIN_USER=%s\n' "${PLAIN_USER}"
		printf 'KAFKA_TEST_PLAIN_PASSWORD=%s\n' "${PLAIN_PASSWORD}"
		printf 'KAFKA_TEST_SCRAM_USER=%s\n' "${SCRAM_USER}"
		printf 'KAFKA_TEST_SCRAM_PASSWORD=%s\n' "${SCRAM_PASSWORD}"
	} >"${ENV_FILE}.tmp"
	chmod 600 "${ENV_FILE}.tmp"
	mv -- "${ENV_FILE}.tmp" "${ENV_FILE}"
}

bootstrap_address() {
	printf '%s:%s\n' "${HOST}" "${LISTENER_PORT[${CLIENT_LISTENERS[0]%% *}]}"
}

write_properties() {
	{
		printf '# Generated by test/kafka/broker.sh on %s. Do not edit: rewritten on every start.\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
		printf 'process.roles=broker,controller\n'
		printf 'node.id=%s\n' "${NODE_ID}"
		listener_properties
		printf 'log.dirs=%s\n' "${DATA_DIR}"
		cat <<'EOF'
auto.create.topics.enable=false
delete.topic.enable=true
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=5
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=5
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.hours=24
log.segment.bytes=67108864
EOF
		if [[ -n "${KAFKA_EXTRA_PROPERTIES:-}" ]]; then
			printf '%s\n' "${KAFKA_EXTRA_PROPERTIES}"
		fi
	} >"${PROPS_FILE}"
}

# ---------------------------------------------------------------------------
# Process handling
# ---------------------------------------------------------------------------

# is_our_broker PID: true if PID is alive and is a Kafka broker started with
# our server.properties (guards against a recycled PID).
is_our_broker() {
	local pid="$1" cmdline
	[[ "${pid}" =~ ^[0-9]+$ ]] || return 1
	kill -0 "${pid}" 2>/dev/null || return 1
	cmdline="$(tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null)" || return 1
	[[ "${cmdline}" == *kafka.Kafka*"${PROPS_FILE}"* ]]
}

# running_pid: prints the PID of the running broker, or fails.
running_pid() {
	local pid
	[[ -f "${PID_FILE}" ]] || return 1
	pid="$(cat -- "${PID_FILE}")"
	is_our_broker "${pid}" || return 1
	printf '%s\n' "${pid}"
}

java_classpath() {
	printf '%s/*' "${LIBS_DIR}"
}

new_cluster_id() {
	# Same format as `kafka-storage.sh random-uuid`: 16 random bytes,
	# URL-safe base64 without padding, not starting with '-'.
	python3 -c '
import base64, uuid
while True:
    s = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    if not s.startswith("-"):
        print(s)
        break
'
}

format_storage() {
	local cluster_id
	cluster_id="$(new_cluster_id)"
	rm -rf -- "${DATA_DIR}"
	mkdir -p -- "${DATA_DIR}"
	# shellcheck disable=SC2086 # JVM_OPTS is a list of words on purpose
	if ! java ${JVM_OPTS} -cp "$(java_classpath)" \
		-Dlog4j.configuration="file:${SCRIPT_DIR}/log4j.properties" \
		kafka.tools.StorageTool format -t "${cluster_id}" -c "${PROPS_FILE}" \
		--add-scram "SCRAM-SHA-512=[name=${SCRAM_USER},password=${SCRAM_PASSWORD}]" \
		>"${STATE_DIR}/format.log" 2>&1; then
		cat -- "${STATE_DIR}/format.log" >&2
		die "formatting the storage in ${DATA_DIR} failed"
	fi
}

# Starts the broker in its own session, detached from this shell, and writes
# its PID (the JVM's own, via exec) to ${PID_FILE}.
launch_broker() {
	rm -f -- "${PID_FILE}"
	# shellcheck disable=SC2016 # $$ and $1 are expanded by the inner sh
	# shellcheck disable=SC2086 # JVM_OPTS is a list of words on purpose
	setsid sh -c 'echo "$$" >"$1"; shift; exec "$@"' sh "${PID_FILE}" \
		java ${JVM_OPTS} -cp "$(java_classpath)" \
		-Dlog4j.configuration="file:${SCRIPT_DIR}/log4j.properties" \
		kafka.Kafka "${PROPS_FILE}" \
		</dev/null >"${LOG_FILE}" 2>&1 8>&- 9>&- &
	local i
	for ((i = 0; i < 100; i++)); do
		[[ -s "${PID_FILE}" ]] && return 0
		sleep 0.05
	done
	die "the broker process did not start (no ${PID_FILE})"
}

port_open() {
	(exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

log_tail() {
	log "last lines of ${LOG_FILE}:"
	tail -n 40 -- "${LOG_FILE}" >&2 || true
}

# wait_ready PID ADDRESS: 0 when ready; 2 when the broker died because a port
# was taken (caller retries); dies on other failures and on timeout.
wait_ready() {
	local pid="$1" host="${2%:*}" port="${2##*:}"
	local deadline=$((SECONDS + START_TIMEOUT))
	while ((SECONDS < deadline)); do
		if ! kill -0 "${pid}" 2>/dev/null; then
			if grep -q 'Address already in use' -- "${LOG_FILE}" 2>/dev/null; then
				return 2
			fi
			log_tail
			rm -f -- "${PID_FILE}"
			die "the broker exited during startup"
		fi
		if grep -qF -- "${STARTED_LINE}" "${LOG_FILE}" 2>/dev/null && port_open "${host}" "${port}"; then
			return 0
		fi
		sleep 0.5
	done
	log_tail
	log "the broker did not come up within ${START_TIMEOUT}s; stopping it"
	stop_pid "${pid}"
	rm -f -- "${PID_FILE}"
	exit 1
}

# stop_pid PID: SIGTERM, wait up to STOP_TIMEOUT seconds, then SIGKILL.
stop_pid() {
	local pid="$1"
	kill -TERM "${pid}" 2>/dev/null || return 0
	local deadline=$((SECONDS + STOP_TIMEOUT))
	while kill -0 "${pid}" 2>/dev/null && ((SECONDS < deadline)); do
		sleep 0.2
	done
	if kill -0 "${pid}" 2>/dev/null; then
		log "broker (pid ${pid}) still running after ${STOP_TIMEOUT}s; sending SIGKILL"
		kill -KILL "${pid}" 2>/dev/null || true
		while kill -0 "${pid}" 2>/dev/null; do
			sleep 0.1
		done
	fi
}

# ---------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------
cmd_start() {
	need java python3 setsid flock sha256sum
	lock_state
	local pid
	if pid="$(running_pid)"; then
		log "already running (pid ${pid}) at $(cat -- "${BOOTSTRAP_FILE}" 2>/dev/null || echo '?')"
		return 0
	fi
	if [[ "${KEEP_DATA}" == 1 ]]; then
		start_kept
		return
	fi
	rm -f -- "${PID_FILE}" "${BOOTSTRAP_FILE}" "${ENV_FILE}"
	fetch_libs
	make_security_material

	local attempt bootstrap rc
	for ((attempt = 1; attempt <= START_ATTEMPTS; attempt++)); do
		assign_ports
		bootstrap="$(bootstrap_address)"
		write_properties
		format_storage
		log "starting Kafka ${KAFKA_VERSION} at ${bootstrap} (log: ${LOG_FILE})"
		launch_broker
		pid="$(cat -- "${PID_FILE}")"
		rc=0
		wait_ready "${pid}" "${bootstrap}" || rc=$?
		if ((rc == 0)); then
			printf '%s\n' "${bootstrap}" >"${BOOTSTRAP_FILE}"
			write_env
			log "Kafka ${KAFKA_VERSION} is running (pid ${pid}) at ${bootstrap}"
			return 0
		fi
		log "a port was taken before the broker could bind it; retrying with new ports"
		rm -f -- "${PID_FILE}"
	done
	log_tail
	die "could not start the broker after ${START_ATTEMPTS} attempts"
}

# start_kept: start the broker again on what a stop with KAFKA_KEEP_DATA=1 kept — its
# server.properties (so its ports), data directory, security material, bootstrap and env files.
start_kept() {
	local f
	for f in "${PROPS_FILE}" "${DATA_DIR}/meta.properties" "${BOOTSTRAP_FILE}" "${ENV_FILE}" "${SEC_DIR}/ca.crt"; do
		[[ -e "${f}" ]] || die "KAFKA_KEEP_DATA=1: nothing to start again: ${f} is missing (start without it first; a stop without it removes the state)"
	done
	fetch_libs
	local bootstrap pid rc=0
	bootstrap="$(cat -- "${BOOTSTRAP_FILE}")"
	log "starting Kafka ${KAFKA_VERSION} again on the kept data at ${bootstrap} (log: ${LOG_FILE})"
	launch_broker
	pid="$(cat -- "${PID_FILE}")"
	wait_ready "${pid}" "${bootstrap}" || rc=$?
	if ((rc != 0)); then
		log_tail
		rm -f -- "${PID_FILE}"
		die "a port of the kept broker (${bootstrap} or another listener) is taken; start without KAFKA_KEEP_DATA=1 for new ports"
	fi
	log "Kafka ${KAFKA_VERSION} is running again (pid ${pid}) at ${bootstrap}"
}

cmd_stop() {
	need flock
	lock_state
	local pid
	if pid="$(running_pid)"; then
		log "stopping broker (pid ${pid})"
		stop_pid "${pid}"
		log "stopped"
	else
		log "not running"
	fi
	rm -f -- "${PID_FILE}"
	if [[ "${KEEP_DATA}" == 1 ]]; then
		log "kept its data, ports and security material for a start with KAFKA_KEEP_DATA=1"
		return 0
	fi
	rm -f -- "${BOOTSTRAP_FILE}" "${ENV_FILE}"
	rm -rf -- "${SEC_DIR}"
}

cmd_status() {
	local pid
	if pid="$(running_pid)" && [[ -s "${BOOTSTRAP_FILE}" ]]; then
		cat -- "${BOOTSTRAP_FILE}"
		log "running (pid ${pid})"
		return 0
	fi
	if [[ -n "${pid:-}" ]]; then
		log "starting (pid ${pid}), not ready yet"
	else
		log "not running"
	fi
	return 1
}

main() {
	if [[ $# -ne 1 ]]; then
		usage
		exit 2
	fi
	case "$1" in
	start) cmd_start ;;
	stop) cmd_stop ;;
	status) cmd_status ;;
	restart)
		cmd_stop
		cmd_start
		;;
	-h | --help | help) usage ;;
	*)
		usage
		exit 2
		;;
	esac
}

main "$@"
