/* The C reference for the benchmarks (libmosquitto): the practical limit of a client on this
 * machine, the counting subscriber of the end-to-end workload and the publisher of the receive
 * workload. Built by benchmarks/bench.py with gcc; prints one JSON line like the Python clients.
 *
 *   mqttbench sub     PORT TOPIC COUNT          count COUNT messages (prints "ready" first)
 *   mqttbench publish PORT TOPIC COUNT QOS INFLIGHT
 *   mqttbench roundtrip PORT TOPIC COUNT QOS
 */
#include <mosquitto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static long count, received, acked, sent;
static double t_first, t_last, t_sent;
static int subscribed, qos_g;
static double *latencies;

static void on_subscribe(struct mosquitto *m, void *o, int mid, int n, const int *q) { subscribed = 1; }
static void on_message(struct mosquitto *m, void *o, const struct mosquitto_message *msg) {
    double t = now();
    if (received == 0) t_first = t;
    t_last = t;
    if (latencies) latencies[received] = t - t_sent;
    received++;
}
static void on_publish(struct mosquitto *m, void *o, int mid) { acked++; }

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static struct mosquitto *connect_to(int port) {
    struct mosquitto *m = mosquitto_new(NULL, true, NULL);
    mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    mosquitto_subscribe_callback_set(m, on_subscribe);
    mosquitto_message_callback_set(m, on_message);
    mosquitto_publish_callback_set(m, on_publish);
    if (mosquitto_connect(m, "127.0.0.1", port, 60) != MOSQ_ERR_SUCCESS) { fprintf(stderr, "connect failed\n"); exit(1); }
    return m;
}

int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: mqttbench sub|publish|roundtrip PORT TOPIC COUNT [QOS [INFLIGHT]]\n"); return 2; }
    mosquitto_lib_init();
    int port = atoi(argv[2]);
    const char *topic = argv[3];
    count = atol(argv[4]);
    int qos = argc > 5 ? atoi(argv[5]) : 0;
    int inflight = argc > 6 ? atoi(argv[6]) : 100;
    char payload[64];
    memset(payload, 'x', sizeof payload);
    struct mosquitto *m = connect_to(port);
    if (!strcmp(argv[1], "sub")) {
        mosquitto_subscribe(m, NULL, topic, qos);
        while (!subscribed) mosquitto_loop(m, 100, 1);
        printf("ready\n"); fflush(stdout);
        double c0 = cpu(), idle_since = now();
        while (received < count) {
            long before = received;
            mosquitto_loop(m, 100, 1000);
            if (received != before) idle_since = now();
            else if (received && now() - idle_since > 5) break;   /* lost messages: stop waiting */
            else if (!received && now() - idle_since > 120) break;
        }
        printf("{\"count\": %ld, \"first\": %.9f, \"last\": %.9f, \"cpu\": %.6f}\n", received, t_first, t_last, cpu() - c0);
    } else if (!strcmp(argv[1], "publish")) {
        mosquitto_max_inflight_messages_set(m, qos ? inflight : 0);
        double c0 = cpu(), t0 = now();
        for (sent = 0; sent < count; sent++) {
            while (qos && sent - acked >= inflight) mosquitto_loop(m, 100, 1);
            while (mosquitto_publish(m, NULL, topic, sizeof payload, payload, qos, false) == MOSQ_ERR_NOMEM) mosquitto_loop(m, 0, 1);
            if (!qos && sent % 64 == 0) mosquitto_loop(m, 0, 1);
        }
        while (qos ? acked < count : mosquitto_want_write(m)) mosquitto_loop(m, 100, 1);
        double t1 = now();
        printf("{\"count\": %ld, \"start\": %.9f, \"end\": %.9f, \"cpu\": %.6f}\n", count, t0, t1, cpu() - c0);
    } else if (!strcmp(argv[1], "roundtrip")) {
        latencies = calloc(count, sizeof(double));
        mosquitto_subscribe(m, NULL, topic, qos);
        while (!subscribed) mosquitto_loop(m, 100, 1);
        double c0 = cpu(), started = now();
        long done = 0;
        while (done < count) {   /* COUNT round trips, or 15 s (ROUNDTRIP_SECONDS in common.py) */
            t_sent = now();
            mosquitto_publish(m, NULL, topic, sizeof payload, payload, qos, false);
            while (received <= done) mosquitto_loop(m, 100, 1);
            done++;
            if (now() - started > 15.0) break;
        }
        double c1 = cpu();
        qsort(latencies, done, sizeof(double), cmp);
        printf("{\"count\": %ld, \"p50\": %.9f, \"p99\": %.9f, \"cpu\": %.6f}\n", done, latencies[done / 2], latencies[done * 99 / 100], c1 - c0);
    }
    mosquitto_disconnect(m);
    mosquitto_loop(m, 100, 1);
    mosquitto_destroy(m);
    mosquitto_lib_cleanup();
    return 0;
}
