/*
 * tokenmeter-clickhouse: serves the ClickHouse engine in libchdb.so (the
 * `clickhouse local` entry point of the npm package @chdb/lib-linux-x64-gnu)
 * over the native and HTTP protocols, for tests and the demo only.
 *
 * deploy/local/clickhouse.sh builds it (gcc, linked with -lchdb and an rpath
 * to the cached library) and passes --path, ports, --config-file and a query
 * that starts the listeners and then blocks. All arguments go straight to the
 * engine. Production runs clickhouse-server (official packages, compose file).
 *
 * The engine reports a failed query through its result handle, not its exit
 * status, so this prints that error and exits 1: the script's readiness check
 * sees a dead process instead of waiting for its start timeout.
 */
#include <stdio.h>

struct chdb_result;
extern struct chdb_result *chdb_query_cmdline(int argc, char **argv);
extern const char *chdb_result_error(struct chdb_result *r);

int main(int argc, char **argv) {
	struct chdb_result *r = chdb_query_cmdline(argc, argv);
	const char *err = r ? chdb_result_error(r) : "engine returned no result";
	if (err && *err) {
		fprintf(stderr, "tokenmeter-clickhouse: %s\n", err);
		return 1;
	}
	return 0;
}
