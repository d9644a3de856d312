/*
 * test_schema.c: unit tests of the config.toml schema (app/config/schema.c).
 *
 * Covers the defaults, every section parsed into its fields, the exact
 * text of each kind of error (unknown keys with suggestions, types,
 * bounds, durations, cross-key rules, the actors' own checks, undefined
 * references), params as JSON, the token file's checks, loading files
 * (tests/app/configs/) and the project's own config.toml.
 */
#include "config/schema.h"

#include "config/toml.h"

#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S  1000000000ull
#define MS 1000000ull

static const char *const kinds[] = {"exec", "http"};
#define NKINDS 2

/* Parses s, which must load; the caller deinits *cfg. */
static void parse_ok(const char *s, bt_config_t *cfg)
{
    bt_config_error_t err;
    int rc = bt_config_parse(s, strlen(s), "config.toml", NULL, kinds, NKINDS, cfg, &err);
    cr_assert_eq(rc, BT_CONFIG_OK, "unexpected error %d: %s", rc, err.message);
}

/* Parses s, which must fail with code and exactly the message want. */
static void parse_fails(const char *s, int code, const char *want)
{
    bt_config_t cfg;
    bt_config_error_t err;
    memset(&cfg, 0xab, sizeof cfg);
    int rc = bt_config_parse(s, strlen(s), "config.toml", NULL, kinds, NKINDS, &cfg, &err);
    cr_assert_eq(rc, code, "rc %d (%s), want %d for:\n%s", rc, err.message, code, s);
    cr_assert_eq(err.code, code);
    cr_assert_str_eq(err.message, want);
    cr_assert_str_eq(err.file, "config.toml");
    /* *out is zeroed on failure: nothing to free, deinit is harmless */
    bt_config_t zero;
    memset(&zero, 0, sizeof zero);
    cr_assert(memcmp(&cfg, &zero, sizeof cfg) == 0, "out not zeroed on failure");
    bt_config_deinit(&cfg);
}

/* ------------------------------------------------------------- defaults */

static void assert_defaults(const bt_config_t *c, const char *db)
{
    cr_assert_eq(c->log_level, BT_LOG_INFO);
    cr_assert_eq(c->runtime_threads, 0);
    cr_assert_str_eq(c->server.address, "127.0.0.1");
    cr_assert_eq(c->server.port, 7878);
    cr_assert_null(c->server.token);
    cr_assert_null(c->server.token_file);
    cr_assert_eq(c->server.nallowed_hosts, 0);
    cr_assert_eq(c->server.max_body, 1u << 20);
    cr_assert_eq(c->server.max_header, 16u << 10);
    cr_assert_eq(c->server.max_connections, 256);
    cr_assert_eq(c->server.max_connections_per_ip, 64);
    cr_assert_eq(c->server.request_deadline_ns, 10 * S);
    cr_assert_eq(c->server.idle_timeout_ns, 30 * S);
    cr_assert_str_eq(c->store.state_dir, "state");
    cr_assert_str_eq(c->store.path, db);
    cr_assert_eq(c->store.sync, RS_SYNC_FULL);
    cr_assert_eq(c->executor.max_running, 4);
    cr_assert_eq(c->executor.max_pending, 1024);
    cr_assert_eq(c->executor.shutdown_timeout_ns, 30 * S);
    cr_assert_eq(c->executor.progress_every_ns, 1 * S);
    cr_assert_eq(c->executor.progress_every_steps, 100);
    cr_assert_eq(c->ntimeouts, 0);
    cr_assert_eq(c->nbreakers, 0);
    cr_assert_eq(c->nlimits, 0);
    cr_assert_eq(c->njobs, 0);
}

Test(config_schema, empty_text_gives_every_default)
{
    bt_config_t c;
    parse_ok("", &c);
    assert_defaults(&c, "state/runs.db");
    cr_assert_null(c.path);
    bt_config_deinit(&c);

    parse_ok("# only a comment\n\n", &c);
    assert_defaults(&c, "state/runs.db");
    bt_config_deinit(&c);

    cr_assert_eq(bt_config_defaults(&c), BT_CONFIG_OK);
    assert_defaults(&c, "state/runs.db");
    bt_config_deinit(&c);
    bt_config_deinit(&c); /* zeroed: a second deinit is a no-op */
    bt_config_deinit(NULL);
}

Test(config_schema, empty_sections_keep_the_defaults)
{
    bt_config_t c;
    parse_ok("[runtime]\n[server]\n[store]\n[executor]\n[timeouts]\n[breakers]\n[limits]\n[jobs]\n",
             &c);
    assert_defaults(&c, "state/runs.db");
    bt_config_deinit(&c);
}

/* ------------------------------------------------------ every section */

static const char full[] = "log_level = \"warn\"\n"
                           "[runtime]\n"
                           "threads = 3\n"
                           "[server]\n"
                           "address = \"10.1.2.3\"\n"
                           "port = 8443\n"
                           "token = \"0123456789abcdef-long-enough\"\n"
                           "allowed_hosts = [\"baton.example.org\", \"fd00::1\"]\n"
                           "max_body = \"4MiB\"\n"
                           "max_header = 2048\n"
                           "max_connections = 50\n"
                           "max_connections_per_ip = 5\n"
                           "request_deadline = \"1.5s\"\n"
                           "idle_timeout = 45000\n"
                           "[store]\n"
                           "state_dir = \"/var/lib/baton\"\n"
                           "path = \"db/runs.sqlite\"\n"
                           "sync = \"off\"\n"
                           "[executor]\n"
                           "max_running = 16\n"
                           "max_pending = 1000000\n"
                           "shutdown_timeout = \"10m\"\n"
                           "progress_every = \"250ms\"\n"
                           "progress_every_steps = 7\n"
                           "[timeouts]\n"
                           "default = \"20s\"\n"
                           "long-job = \"1h\"\n"
                           "[breakers.db]\n"
                           "consecutive_failures = 0\n"
                           "window_size = 100\n"
                           "min_calls = 20\n"
                           "failure_rate = 25\n"
                           "slow_call = \"750ms\"\n"
                           "open_wait = \"5s\"\n"
                           "half_open_probes = 4\n"
                           "half_open_successes = 3\n"
                           "[breakers.mail]\n"
                           "[limits.api]\n"
                           "rate = 100\n"
                           "period = \"1m\"\n"
                           "burst = 10\n"
                           "max_keys = 5000\n"
                           "base = \"50ms\"\n"
                           "cap = \"5s\"\n"
                           "max_attempts = 7\n"
                           "max_elapsed = \"30s\"\n"
                           "rate_limit_backoff = \"20s\"\n"
                           "retry_after_max = \"1m\"\n"
                           "budget_ratio = 10\n"
                           "budget_reserve = 3\n"
                           "[jobs.backup]\n"
                           "kind = \"exec\"\n"
                           "max_active = 3\n"
                           "stop_grace = \"2m\"\n"
                           "recovery = \"fail\"\n"
                           "breaker = \"db\"\n"
                           "limit = \"api\"\n"
                           "timeout = \"long-job\"\n"
                           "params = { argv = [\"/usr/bin/backup\", \"--all\"] }\n"
                           "[jobs.plain]\n"
                           "kind = \"http\"\n";

Test(config_schema, parses_every_section_into_its_fields)
{
    bt_config_t c;
    parse_ok(full, &c);
    cr_assert_eq(c.log_level, BT_LOG_WARN);
    cr_assert_eq(c.runtime_threads, 3);

    const bt_config_server_t *s = &c.server;
    cr_assert_str_eq(s->address, "10.1.2.3");
    cr_assert_eq(s->port, 8443);
    cr_assert_str_eq(s->token, "0123456789abcdef-long-enough");
    cr_assert_null(s->token_file);
    cr_assert_eq(s->nallowed_hosts, 2);
    cr_assert_str_eq(s->allowed_hosts[0], "baton.example.org");
    cr_assert_str_eq(s->allowed_hosts[1], "fd00::1");
    cr_assert_eq(s->max_body, 4u << 20);
    cr_assert_eq(s->max_header, 2048);
    cr_assert_eq(s->max_connections, 50);
    cr_assert_eq(s->max_connections_per_ip, 5);
    cr_assert_eq(s->request_deadline_ns, 1500 * MS);
    cr_assert_eq(s->idle_timeout_ns, 45 * S);

    cr_assert_str_eq(c.store.state_dir, "/var/lib/baton");
    cr_assert_str_eq(c.store.path, "/var/lib/baton/db/runs.sqlite");
    cr_assert_eq(c.store.sync, RS_SYNC_OFF);

    cr_assert_eq(c.executor.max_running, 16);
    cr_assert_eq(c.executor.max_pending, 1000000);
    cr_assert_eq(c.executor.shutdown_timeout_ns, 600 * S);
    cr_assert_eq(c.executor.progress_every_ns, 250 * MS);
    cr_assert_eq(c.executor.progress_every_steps, 7);

    cr_assert_eq(c.ntimeouts, 2);
    cr_assert_str_eq(c.timeouts[0].name, "default");
    cr_assert_eq(c.timeouts[0].timeout_ns, 20 * S);
    cr_assert_str_eq(c.timeouts[1].name, "long-job");
    cr_assert_eq(c.timeouts[1].timeout_ns, 3600 * S);

    cr_assert_eq(c.nbreakers, 2);
    const bt_config_breaker_t *db = bt_config_find_breaker(&c, "db");
    cr_assert_not_null(db);
    cr_assert_str_eq(db->name, "db");
    cr_assert_eq(db->args.consecutive_failures, 0);
    cr_assert_eq(db->args.window_size, 100);
    cr_assert_eq(db->args.min_calls, 20);
    cr_assert_eq(db->args.failure_rate_pct, 25);
    cr_assert_eq(db->args.slow_call_ns, 750 * MS);
    cr_assert_eq(db->args.open_wait_ns, 5 * S);
    cr_assert_eq(db->args.half_open_probes, 4);
    cr_assert_eq(db->args.half_open_successes, 3);
    cr_assert_eq(db->args.observer, BT_REF_NONE);
    cr_assert_eq(bt_breaker_args_check(&db->args, NULL), BT_OK);
    /* an empty breaker table takes the defaults */
    const bt_config_breaker_t *mail = bt_config_find_breaker(&c, "mail");
    cr_assert_not_null(mail);
    cr_assert_eq(mail->args.consecutive_failures, 5);
    cr_assert_eq(mail->args.window_size, 0);
    cr_assert_eq(mail->args.open_wait_ns, 30 * S);
    cr_assert_eq(mail->args.half_open_probes, 1);
    cr_assert_eq(mail->args.half_open_successes, 1);
    cr_assert_null(bt_config_find_breaker(&c, "nope"));

    cr_assert_eq(c.nlimits, 1);
    const bt_config_limit_t *api = bt_config_find_limit(&c, "api");
    cr_assert_not_null(api);
    cr_assert_eq(api->args.rate, 100);
    cr_assert_eq(api->args.period_ns, 60 * S);
    cr_assert_eq(api->args.burst, 10);
    cr_assert_eq(api->args.max_keys, 5000);
    cr_assert_eq(api->args.retry.base_ns, 50 * MS);
    cr_assert_eq(api->args.retry.cap_ns, 5 * S);
    cr_assert_eq(api->args.retry.max_attempts, 7);
    cr_assert_eq(api->args.retry.max_elapsed_ns, 30 * S);
    cr_assert_eq(api->args.retry.rate_limit_backoff_ns, 20 * S);
    cr_assert_eq(api->args.retry.retry_after_max_ns, 60 * S);
    cr_assert_eq(api->args.retry.budget_ratio_pct, 10);
    cr_assert_eq(api->args.retry.budget_reserve, 3);
    cr_assert_eq(bt_ratelimit_args_check(&api->args, NULL), BT_OK);

    cr_assert_eq(c.njobs, 2);
    const bt_config_job_t *j = bt_config_find_job(&c, "backup");
    cr_assert_not_null(j);
    cr_assert_str_eq(j->kind, "exec");
    cr_assert_eq(j->max_active, 3);
    cr_assert_eq(j->stop_grace_ns, 120 * S);
    cr_assert_eq(j->recovery, EX_RECOVERY_FAIL);
    cr_assert_str_eq(j->breaker, "db");
    cr_assert_str_eq(j->limit, "api");
    cr_assert_str_eq(j->timeout, "long-job");
    cr_assert_str_eq(j->params_json, "{\"argv\":[\"/usr/bin/backup\",\"--all\"]}");
    ex_job_t ex;
    bt_config_job_ex(j, &ex);
    cr_assert_eq(ex.name, j->name);
    cr_assert_eq(ex.kind, j->kind);
    cr_assert_eq(ex.max_active, 3);
    cr_assert_eq(ex.stop_grace_ns, 120 * S);
    cr_assert_eq(ex.recovery, EX_RECOVERY_FAIL);
    /* a job with only a kind: the defaults */
    const bt_config_job_t *p = bt_config_find_job(&c, "plain");
    cr_assert_not_null(p);
    cr_assert_eq(p->max_active, 1);
    cr_assert_eq(p->stop_grace_ns, 5 * S);
    cr_assert_eq(p->recovery, EX_RECOVERY_DEFAULT);
    cr_assert_null(p->breaker);
    cr_assert_null(p->limit);
    cr_assert_null(p->timeout);
    cr_assert_str_eq(p->params_json, "{}");

    bt_timeouts_args_t ta;
    bt_config_timeouts_args(&c, &ta);
    cr_assert_eq(ta.nclasses, 2);
    cr_assert_eq(ta.classes, c.timeouts);
    bt_timeout_class_t merged[BT_TIMEOUT_CLASSES_MAX];
    uint32_t n;
    cr_assert_eq(bt_timeouts_classes(&ta, merged, &n, NULL), BT_OK);
    cr_assert_eq(n, 5); /* quick, default (overridden), bulk, import, long-job */
    bt_config_deinit(&c);
}

Test(config_schema, defaults_inside_tables)
{
    bt_config_t c;
    parse_ok("[breakers.w]\nwindow_size = 4\n"
             "[breakers.big]\nwindow_size = 1000\n"
             "[limits.l]\nrate = 7\n",
             &c);
    /* min_calls defaults to min(10, window_size) */
    cr_assert_eq(bt_config_find_breaker(&c, "w")->args.min_calls, 4);
    cr_assert_eq(bt_config_find_breaker(&c, "big")->args.min_calls, 10);
    cr_assert_eq(bt_config_find_breaker(&c, "big")->args.failure_rate_pct, 50);
    /* burst defaults to the rate, period to 1 s, retry to the backoff defaults */
    const bt_config_limit_t *l = bt_config_find_limit(&c, "l");
    bt_backoff_args_t def;
    bt_backoff_args_default(&def);
    cr_assert_eq(l->args.burst, 7);
    cr_assert_eq(l->args.period_ns, S);
    cr_assert_eq(l->args.retry.base_ns, def.base_ns);
    cr_assert_eq(l->args.retry.cap_ns, def.cap_ns);
    cr_assert_eq(l->args.retry.max_attempts, def.max_attempts);
    cr_assert_eq(l->args.retry.max_elapsed_ns, def.max_elapsed_ns);
    cr_assert_eq(l->args.retry.rate_limit_backoff_ns, def.rate_limit_backoff_ns);
    cr_assert_eq(l->args.retry.retry_after_max_ns, def.retry_after_max_ns);
    cr_assert_eq(l->args.retry.budget_ratio_pct, def.budget_ratio_pct);
    cr_assert_eq(l->args.retry.budget_reserve, def.budget_reserve);
    bt_config_deinit(&c);
}

Test(config_schema, dotted_keys_and_inline_tables_are_the_same_keys)
{
    bt_config_t c;
    parse_ok("executor.max_running = 9\nserver = { port = 1234 }\n", &c);
    cr_assert_eq(c.executor.max_running, 9);
    cr_assert_eq(c.server.port, 1234);
    bt_config_deinit(&c);
}

Test(config_schema, relative_paths_follow_base_dir)
{
    const char *s = "[store]\nstate_dir = \"data\"\n";
    bt_config_t c;
    bt_config_error_t err;
    cr_assert_eq(bt_config_parse(s, strlen(s), NULL, "/etc/baton", kinds, NKINDS, &c, &err),
                 BT_CONFIG_OK, "%s", err.message);
    cr_assert_str_eq(c.store.state_dir, "/etc/baton/data");
    cr_assert_str_eq(c.store.path, "/etc/baton/data/runs.db");
    bt_config_deinit(&c);

    s = "[store]\nstate_dir = \"/srv/state\"\npath = \"/db/x.db\"\n";
    cr_assert_eq(bt_config_parse(s, strlen(s), NULL, "/etc/baton/", kinds, NKINDS, &c, &err),
                 BT_CONFIG_OK);
    cr_assert_str_eq(c.store.state_dir, "/srv/state");
    cr_assert_str_eq(c.store.path, "/db/x.db");
    bt_config_deinit(&c);

    cr_assert_eq(bt_config_parse("", 0, NULL, "/etc/baton/", kinds, NKINDS, &c, &err),
                 BT_CONFIG_OK);
    cr_assert_str_eq(c.store.state_dir, "/etc/baton/state");
    cr_assert_str_eq(c.store.path, "/etc/baton/state/runs.db");
    bt_config_deinit(&c);
}

Test(config_schema, null_kinds_accept_any_kind)
{
    const char *s = "[jobs.a]\nkind = \"whatever\"\n";
    bt_config_t c;
    bt_config_error_t err;
    cr_assert_eq(bt_config_parse(s, strlen(s), NULL, NULL, NULL, 0, &c, &err), BT_CONFIG_OK);
    cr_assert_str_eq(c.jobs[0].kind, "whatever");
    bt_config_deinit(&c);
    cr_assert_eq(bt_config_parse(s, strlen(s), NULL, NULL, NULL, 0, NULL, &err), BT_CONFIG_EINVAL);
}

/* --------------------------------------------------------- unknown keys */

Test(config_schema, unknown_key_names_the_section_and_suggests)
{
    parse_fails("[executor]\nmax_pending = 10\n\n\n\n\nmax_runing = 3\n", BT_CONFIG_EUNKNOWN,
                "config.toml:7:1: unknown key 'max_runing' in [executor]; did you mean "
                "'max_running'?");
    parse_fails("[server]\ntokne = \"x\"\n", BT_CONFIG_EUNKNOWN,
                "config.toml:2:1: unknown key 'tokne' in [server]; did you mean 'token'?");
    parse_fails("log_levle = \"info\"\n", BT_CONFIG_EUNKNOWN,
                "config.toml:1:1: unknown key 'log_levle' at the top level; did you mean "
                "'log_level'?");
    parse_fails("[breakers.db]\nopen_wiat = \"1s\"\n", BT_CONFIG_EUNKNOWN,
                "config.toml:2:1: unknown key 'open_wiat' in [breakers.db]; did you mean "
                "'open_wait'?");
    parse_fails("[jobs.x]\nkind = \"exec\"\nparam = {}\n", BT_CONFIG_EUNKNOWN,
                "config.toml:3:1: unknown key 'param' in [jobs.x]; did you mean 'params'?");
}

Test(config_schema, unknown_key_without_a_close_match_lists_the_keys)
{
    parse_fails("[store]\ncolour = \"blue\"\n", BT_CONFIG_EUNKNOWN,
                "config.toml:2:1: unknown key 'colour' in [store] (known keys: state_dir, path, "
                "sync)");
    parse_fails("[runtime]\nworkers = 4\n", BT_CONFIG_EUNKNOWN,
                "config.toml:2:1: unknown key 'workers' in [runtime] (known keys: threads)");
}

/* [server] threads sized the HTTP thread pool; the server now runs one
 * thread per connection, and an old config that still sets it is told so
 * like any other unknown key. */
Test(config_schema, server_threads_is_no_longer_a_key)
{
    parse_fails("[server]\nthreads = 8\n", BT_CONFIG_EUNKNOWN,
                "config.toml:2:1: unknown key 'threads' in [server] (known keys: address, port, "
                "token, token_file, allowed_hosts, max_body, max_header, max_connections, "
                "max_connections_per_ip, request_deadline, idle_timeout)");
}

Test(config_schema, unknown_section_suggests_a_section)
{
    parse_fails("[exector]\nmax_running = 1\n", BT_CONFIG_EUNKNOWN,
                "config.toml:1:2: unknown section [exector]; did you mean [executor]?");
    parse_fails("[s]\n", BT_CONFIG_EUNKNOWN,
                "config.toml:1:2: unknown section [s] (known: log_level, runtime, server, "
                "store, executor, timeouts, breakers, limits, jobs)");
    parse_fails("executr = 1\n", BT_CONFIG_EUNKNOWN,
                "config.toml:1:1: unknown key 'executr' at the top level; did you mean "
                "'executor'?");
    parse_fails("[metrics]\n", BT_CONFIG_EUNKNOWN,
                "config.toml:1:2: unknown section [metrics] (known: log_level, runtime, server, "
                "store, executor, timeouts, breakers, limits, jobs)");
}

/* ---------------------------------------------------- types and bounds */

Test(config_schema, wrong_type_names_both_types)
{
    parse_fails("[server]\nport = \"80\"\n", BT_CONFIG_ETYPE,
                "config.toml:2:1: server.port must be an integer, not a string");
    parse_fails("log_level = 3\n", BT_CONFIG_ETYPE,
                "config.toml:1:1: log_level must be a string, not an integer");
    parse_fails("executor = 3\n", BT_CONFIG_ETYPE,
                "config.toml:1:1: executor must be a table ([executor]), not an integer");
    parse_fails("[server]\nallowed_hosts = \"a\"\n", BT_CONFIG_ETYPE,
                "config.toml:2:1: server.allowed_hosts must be an array of host names, not a "
                "string");
    parse_fails("[server]\nallowed_hosts = [\"a\", 1]\n", BT_CONFIG_ETYPE,
                "config.toml:2:23: server.allowed_hosts[1] must be a string, not an integer");
    parse_fails("[executor]\nmax_running = true\n", BT_CONFIG_ETYPE,
                "config.toml:2:1: executor.max_running must be an integer, not a boolean");
    parse_fails("[jobs.x]\nkind = \"exec\"\nparams = \"--all\"\n", BT_CONFIG_ETYPE,
                "config.toml:3:1: jobs.x.params must be a table (the job's default params), not "
                "a string");
    parse_fails("[breakers]\ndb = 1\n", BT_CONFIG_ETYPE,
                "config.toml:2:1: breakers.db must be a table ([breakers.db]), not an integer");
}

Test(config_schema, out_of_bounds_values_give_the_range)
{
    parse_fails("[runtime]\nthreads = 10000\n", BT_CONFIG_ERANGE,
                "config.toml:2:1: runtime.threads = 10000 is out of range 0..256 (0 = online "
                "CPUs)");
    parse_fails("[server]\nport = 0\n", BT_CONFIG_ERANGE,
                "config.toml:2:1: server.port = 0 is out of range 1..65535");
    parse_fails("[server]\nport = 65536\n", BT_CONFIG_ERANGE,
                "config.toml:2:1: server.port = 65536 is out of range 1..65535");
    parse_fails("[server]\nmax_body = \"128MiB\"\n", BT_CONFIG_ERANGE,
                "config.toml:2:1: server.max_body = \"128MiB\" is out of range 1KiB..64MiB");
    parse_fails("[server]\nmax_header = 512\n", BT_CONFIG_ERANGE,
                "config.toml:2:1: server.max_header = 512 is out of range 1KiB..1MiB");
    parse_fails("[executor]\nmax_running = 0\n", BT_CONFIG_ERANGE,
                "config.toml:2:1: executor.max_running = 0 is out of range 1..4096");
    parse_fails("[executor]\nmax_pending = -1\n", BT_CONFIG_ERANGE,
                "config.toml:2:1: executor.max_pending = -1 is out of range 1..1000000");
    parse_fails("[jobs.a]\nkind = \"exec\"\nmax_active = 2000\n", BT_CONFIG_ERANGE,
                "config.toml:3:1: jobs.a.max_active = 2000 is out of range 1..1024");
}

Test(config_schema, durations_out_of_bounds)
{
    parse_fails("[executor]\nshutdown_timeout = \"3h\"\n", BT_CONFIG_ERANGE,
                "config.toml:2:1: executor.shutdown_timeout = \"3h\" is out of range 100ms..10m");
    parse_fails("[executor]\nshutdown_timeout = 600001\n", BT_CONFIG_ERANGE,
                "config.toml:2:1: executor.shutdown_timeout = 600001 (ms) is out of range "
                "100ms..10m");
    parse_fails("[server]\nrequest_deadline = \"50ms\"\n", BT_CONFIG_ERANGE,
                "config.toml:2:1: server.request_deadline = \"50ms\" is out of range 100ms..5m");
    parse_fails("[jobs.a]\nkind = \"exec\"\nstop_grace = \"11m\"\n", BT_CONFIG_ERANGE,
                "config.toml:3:1: jobs.a.stop_grace = \"11m\" is out of range 1ms..10m");
    parse_fails("[timeouts]\nslow = \"2h\"\n", BT_CONFIG_ERANGE,
                "config.toml:2:1: timeouts.slow = \"2h\" is out of range 1ms..1h");
    parse_fails("[executor]\nshutdown_timeout = \"99999999999999999999h\"\n", BT_CONFIG_ERANGE,
                "config.toml:2:1: executor.shutdown_timeout = \"99999999999999999999h\" is out "
                "of range 100ms..10m");
}

Test(config_schema, bad_durations_say_the_accepted_forms)
{
    static const char forms[] = "use a string with a unit such as \"250ms\", \"30s\", \"1.5s\", "
                                "\"5m\" or \"1h\", or an integer number of milliseconds";
    char want[512];
    snprintf(want, sizeof want,
             "config.toml:2:1: executor.shutdown_timeout = \"3 hours\" is not a duration; %s",
             forms);
    parse_fails("[executor]\nshutdown_timeout = \"3 hours\"\n", BT_CONFIG_EVALUE, want);
    snprintf(want, sizeof want,
             "config.toml:2:1: server.idle_timeout = \"30\" is not a duration; %s", forms);
    parse_fails("[server]\nidle_timeout = \"30\"\n", BT_CONFIG_EVALUE, want);
    snprintf(want, sizeof want,
             "config.toml:2:1: executor.progress_every = -5 (ms) is not a duration; %s", forms);
    parse_fails("[executor]\nprogress_every = -5\n", BT_CONFIG_EVALUE, want);
    snprintf(want, sizeof want,
             "config.toml:2:1: breakers.b.open_wait must be a duration (a string with a unit such "
             "as \"250ms\", \"30s\", \"1.5s\", \"5m\" or \"1h\", or an integer number of "
             "milliseconds), not a float");
    parse_fails("[breakers.b]\nopen_wait = 1.5\n", BT_CONFIG_ETYPE, want);
}

Test(config_schema, durations_parse_and_format)
{
    static const struct {
        const char *s;
        uint64_t ns;
    } ok[] = {
        {"250ms", 250 * MS}, {"30s", 30 * S},      {"5m", 300 * S},
        {"1h", 3600 * S},    {"1.5s", 1500 * MS},  {"0s", 0},
        {"1m30s", 90 * S},   {"2h0m5s", 7205 * S}, {"10us", 10000},
        {"7ns", 7},          {"0.25h", 900 * S},   {"1.000000001s", S + 1},
        {"1.5ms", 1500000},  {"90s", 90 * S},      {"18446744073s", 18446744073ull * S},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint64_t ns = 12345;
        cr_assert_eq(bt_config_duration_parse(ok[i].s, &ns), BT_CONFIG_OK, "%s", ok[i].s);
        cr_assert_eq(ns, ok[i].ns, "%s gave %llu", ok[i].s, (unsigned long long)ns);
    }
    static const char *const bad[] = {"",    "s",   "5",  "5 s", " 5s",  "5s ",  "-5s", "+5s",
                                      "1.s", ".5s", "5d", "5S",  "5mss", "1e3s", "5s5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t ns = 12345;
        cr_assert_eq(bt_config_duration_parse(bad[i], &ns), BT_CONFIG_EVALUE, "'%s'", bad[i]);
        cr_assert_eq(ns, 12345);
    }
    uint64_t ns;
    cr_assert_eq(bt_config_duration_parse("18446744074s", &ns), BT_CONFIG_ERANGE);
    cr_assert_eq(bt_config_duration_parse("99999999999999999999999ns", &ns), BT_CONFIG_ERANGE);

    static const struct {
        uint64_t ns;
        const char *s;
    } fmt[] = {
        {0, "0s"},
        {7, "7ns"},
        {1500, "1.5us"},
        {250 * MS, "250ms"},
        {1500 * MS, "1.5s"},
        {30 * S, "30s"},
        {90 * S, "1m30s"},
        {3600 * S, "1h"},
        {7205 * S, "2h5s"},
        {61500 * MS, "61.5s"},
        {100 * MS + 5, "100.000005ms"},
    };
    char buf[32];
    for (size_t i = 0; i < sizeof fmt / sizeof fmt[0]; i++) {
        cr_assert_str_eq(bt_config_duration_format(fmt[i].ns, buf, sizeof buf), fmt[i].s);
        uint64_t back;
        cr_assert_eq(bt_config_duration_parse(buf, &back), BT_CONFIG_OK);
        cr_assert_eq(back, fmt[i].ns, "%s does not read back", buf);
    }
}

Test(config_schema, bad_enums_list_the_choices)
{
    parse_fails("log_level = \"verbose\"\n", BT_CONFIG_EVALUE,
                "config.toml:1:1: log_level = \"verbose\" is not one of \"debug\", \"info\", "
                "\"warn\", \"error\"");
    parse_fails("[store]\nsync = \"ful\"\n", BT_CONFIG_EVALUE,
                "config.toml:2:1: store.sync = \"ful\" is not one of \"full\", \"normal\", "
                "\"off\"; did you mean \"full\"?");
    parse_fails("[jobs.a]\nkind = \"exec\"\nrecovery = \"retry\"\n", BT_CONFIG_EVALUE,
                "config.toml:3:1: jobs.a.recovery = \"retry\" is not one of \"default\", "
                "\"fail\", \"resume\"");
    bt_config_t c;
    parse_ok("log_level = \"error\"\n[store]\nsync = \"normal\"\n", &c);
    cr_assert_eq(c.log_level, BT_LOG_ERROR);
    cr_assert_eq(c.store.sync, RS_SYNC_NORMAL);
    bt_config_deinit(&c);
}

Test(config_schema, sizes_take_units)
{
    bt_config_t c;
    parse_ok("[server]\nmax_body = \"64MiB\"\nmax_header = \"1KiB\"\n", &c);
    cr_assert_eq(c.server.max_body, 64u << 20);
    cr_assert_eq(c.server.max_header, 1024);
    bt_config_deinit(&c);
    parse_fails("[server]\nmax_body = \"1 MB\"\n", BT_CONFIG_EVALUE,
                "config.toml:2:1: server.max_body = \"1 MB\" is not a size; use an integer number "
                "of bytes or a string such as \"512B\", \"16KiB\", \"1MiB\"");
}

/* ---------------------------------------------------------- [server] */

Test(config_schema, address_must_be_a_literal)
{
    parse_fails("[server]\naddress = \"localhost\"\n", BT_CONFIG_EVALUE,
                "config.toml:2:1: server.address = \"localhost\" is not an IPv4 or IPv6 address "
                "(write a literal such as 127.0.0.1 or ::1; host names are not resolved)");
    bt_config_t c;
    parse_ok("[server]\naddress = \"::1\"\n", &c);
    cr_assert_str_eq(c.server.address, "::1");
    bt_config_deinit(&c);
    parse_ok("[server]\naddress = \"127.0.0.2\"\n", &c);
    bt_config_deinit(&c);
}

Test(config_schema, non_loopback_address_needs_a_token)
{
    parse_fails("[server]\naddress = \"0.0.0.0\"\n", BT_CONFIG_EVALUE,
                "config.toml:2:1: server.address 0.0.0.0 is not loopback; set server.token or "
                "server.token_file");
    parse_fails("[server]\nport = 80\naddress = \"::\"\n", BT_CONFIG_EVALUE,
                "config.toml:3:1: server.address :: is not loopback; set server.token or "
                "server.token_file");
    bt_config_t c;
    parse_ok("[server]\naddress = \"0.0.0.0\"\ntoken = \"abcdefghijklmnop\"\n", &c);
    cr_assert_str_eq(c.server.token, "abcdefghijklmnop");
    bt_config_deinit(&c);
}

Test(config_schema, token_rules)
{
    parse_fails("[server]\ntoken = \"short\"\n", BT_CONFIG_EVALUE,
                "config.toml:2:1: server.token is 5 characters; a token must be at least 16 (use "
                "a random string, e.g. from openssl rand -hex 32)");
    parse_fails("[server]\ntoken = \"abcdefgh ijklmnop\"\n", BT_CONFIG_EVALUE,
                "config.toml:2:1: server.token must be printable ASCII without spaces (it is sent "
                "in an HTTP header); character 9 is not");
    parse_fails("[server]\ntoken = \"abcdefghijklmnopq\"\ntoken_file = \"t\"\n", BT_CONFIG_EVALUE,
                "config.toml:3:1: server.token and server.token_file are both set; use one of "
                "them");
    parse_fails("[server]\ntoken_file = \"t\"\ntoken = \"abcdefghijklmnopq\"\n", BT_CONFIG_EVALUE,
                "config.toml:3:1: server.token and server.token_file are both set; use one of "
                "them");
}

Test(config_schema, connection_limits_relate)
{
    parse_fails("[server]\nmax_connections = 10\nmax_connections_per_ip = 20\n", BT_CONFIG_ERANGE,
                "config.toml:3:1: server.max_connections_per_ip = 20 is more than "
                "server.max_connections (10)");
    bt_config_t c;
    parse_ok("[server]\nmax_connections = 10\n", &c); /* the default 64 is lowered */
    cr_assert_eq(c.server.max_connections_per_ip, 10);
    bt_config_deinit(&c);
    parse_fails("[server]\nidle_timeout = \"1.5s\"\n", BT_CONFIG_EVALUE,
                "config.toml:2:1: server.idle_timeout = 1.5s must be a whole number of seconds");
}

Test(config_schema, allowed_hosts_are_host_names)
{
    parse_fails("[server]\nallowed_hosts = [\"ok.example\", \"http://x:80\"]\n", BT_CONFIG_EVALUE,
                "config.toml:2:32: server.allowed_hosts[1] = \"http://x:80\" is not a host name or "
                "IP address (no port, no scheme: \"baton.example.org\", \"10.0.0.5\", \"::1\")");
    parse_fails("[server]\nallowed_hosts = [\"\"]\n", BT_CONFIG_EVALUE,
                "config.toml:2:18: server.allowed_hosts[0] must not be empty");
}

/* Makes a directory with a token file of the given mode and text; returns
 * the directory (static buffer). */
static const char *token_dir(const char *text, mode_t mode)
{
    static char dir[64];
    snprintf(dir, sizeof dir, "/tmp/baton-schema-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/token", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    cr_assert_eq(chmod(path, mode), 0);
    return dir;
}

static void token_dir_remove(const char *dir)
{
    char path[128];
    snprintf(path, sizeof path, "%s/token", dir);
    unlink(path);
    rmdir(dir);
}

Test(config_schema, token_file_is_read_relative_to_the_config)
{
    const char *dir = token_dir("0123456789abcdefXYZ\n", 0600);
    const char *s = "[server]\naddress = \"0.0.0.0\"\ntoken_file = \"token\"\n";
    bt_config_t c;
    bt_config_error_t err;
    cr_assert_eq(bt_config_parse(s, strlen(s), NULL, dir, kinds, NKINDS, &c, &err), BT_CONFIG_OK,
                 "%s", err.message);
    cr_assert_str_eq(c.server.token, "0123456789abcdefXYZ"); /* newline stripped */
    char want[128];
    snprintf(want, sizeof want, "%s/token", dir);
    cr_assert_str_eq(c.server.token_file, want);
    bt_config_deinit(&c);
    token_dir_remove(dir);
}

Test(config_schema, token_file_open_to_others_is_refused)
{
    const char *dir = token_dir("0123456789abcdefXYZ\n", 0644);
    const char *s = "[server]\ntoken_file = \"token\"\n";
    bt_config_t c;
    bt_config_error_t err;
    cr_assert_eq(bt_config_parse(s, strlen(s), NULL, dir, kinds, NKINDS, &c, &err),
                 BT_CONFIG_EPERM);
    char want[256];
    snprintf(want, sizeof want,
             "config.toml:2:1: server.token_file '%s/token' has mode 0644, open to group or "
             "others; make it private with chmod 600",
             dir);
    cr_assert_str_eq(err.message, want);
    token_dir_remove(dir);

    dir = token_dir("0123456789abcdefXYZ", 0640); /* group-readable too */
    cr_assert_eq(bt_config_parse(s, strlen(s), NULL, dir, kinds, NKINDS, &c, &err),
                 BT_CONFIG_EPERM);
    token_dir_remove(dir);
}

Test(config_schema, token_file_content_is_checked)
{
    const char *dir = token_dir("short\n", 0600);
    const char *s = "[server]\ntoken_file = \"token\"\n";
    bt_config_t c;
    bt_config_error_t err;
    cr_assert_eq(bt_config_parse(s, strlen(s), NULL, dir, kinds, NKINDS, &c, &err),
                 BT_CONFIG_EVALUE);
    char want[256];
    snprintf(want, sizeof want,
             "config.toml:2:1: the token in server.token_file '%s/token' is 5 characters; a "
             "token must be at least 16 (use a random string, e.g. from openssl rand -hex 32)",
             dir);
    cr_assert_str_eq(err.message, want);
    token_dir_remove(dir);

    s = "[server]\ntoken_file = \"/nonexistent/baton/token\"\n";
    cr_assert_eq(bt_config_parse(s, strlen(s), NULL, NULL, kinds, NKINDS, &c, &err),
                 BT_CONFIG_EIO); /* ENOENT means the config file itself */
    cr_assert_str_eq(err.message, "config.toml:2:1: server.token_file '/nonexistent/baton/token' "
                                  "cannot be opened: No such file or directory");
}

/* ------------------------------------------ timeouts, breakers, limits */

Test(config_schema, timeout_class_names_are_checked)
{
    parse_fails("[timeouts]\nQuick = \"1s\"\n", BT_CONFIG_EVALUE,
                "config.toml:2:1: timeout class name 'Quick' is not valid: use 1..31 characters "
                "of a-z, 0-9, '_' or '-'");
    parse_fails("[timeouts]\nabcdefghijklmnopqrstuvwxyz012345 = \"1s\"\n", BT_CONFIG_EVALUE,
                "config.toml:2:1: timeout class name 'abcdefghijklmnopqrstuvwxyz012345' is not "
                "valid: use 1..31 characters of a-z, 0-9, '_' or '-'");
    char text[2048];
    size_t o = (size_t)snprintf(text, sizeof text, "[timeouts]\n");
    for (int i = 0; i < 29; i++)
        o += (size_t)snprintf(text + o, sizeof text - o, "c%d = \"1s\"\n", i);
    parse_fails(text, BT_CONFIG_EVALUE,
                "config.toml:1:2: [timeouts]: timeouts: too many classes (at most 32, the 4 "
                "defaults included)");
}

Test(config_schema, breaker_is_validated_by_the_breaker)
{
    parse_fails("[breakers.db]\nwindow_size = 10\nmin_calls = 20\n", BT_CONFIG_EVALUE,
                "config.toml:1:11: [breakers.db]: breaker: min_calls must be in 1..window_size");
    parse_fails("\n[breakers.db]\nconsecutive_failures = 0\n", BT_CONFIG_EVALUE,
                "config.toml:2:11: [breakers.db]: breaker: set consecutive_failures or window_size "
                "(or both)");
    parse_fails("[breakers.db]\nwindow_size = 10\nfailure_rate = 101\n", BT_CONFIG_EVALUE,
                "config.toml:1:11: [breakers.db]: breaker: failure_rate_pct must be in 1..100");
    parse_fails("[breakers.db]\nhalf_open_probes = 1\nhalf_open_successes = 2\n", BT_CONFIG_EVALUE,
                "config.toml:1:11: [breakers.db]: breaker: half_open_successes must be in "
                "1..half_open_probes");
    parse_fails("[breakers.db]\nopen_wait = 0\n", BT_CONFIG_EVALUE,
                "config.toml:1:11: [breakers.db]: breaker: open_wait must be > 0");
    parse_fails("[breakers.db]\nwindow_size = 70000\n", BT_CONFIG_EVALUE,
                "config.toml:1:11: [breakers.db]: breaker: window_size must be <= 65536");
    parse_fails("[breakers.\"a b\"]\n", BT_CONFIG_EVALUE,
                "config.toml:1:11: breaker name 'a b' is not valid: use 1..63 characters of A-Z, "
                "a-z, 0-9, '_' or '-'");
}

Test(config_schema, limit_is_validated_by_the_limiter)
{
    parse_fails("[limits.api]\nrate = -5\n", BT_CONFIG_ERANGE,
                "config.toml:2:1: limits.api.rate = -5 is negative; a rate is a number of tokens "
                "per period, >= 1");
    parse_fails("[limits.api]\nrate = 0\n", BT_CONFIG_EVALUE,
                "config.toml:1:9: [limits.api]: ratelimit: rate and period must be > 0");
    parse_fails("[limits.api]\nrate = 5\nburst = 0\n", BT_CONFIG_EVALUE,
                "config.toml:1:9: [limits.api]: ratelimit: burst must be >= 1");
    parse_fails("[limits.api]\nrate = 5\nbase = \"2s\"\ncap = \"1s\"\n", BT_CONFIG_EVALUE,
                "config.toml:1:9: [limits.api]: backoff: cap must be >= base");
    parse_fails("[limits.api]\nrate = 5\nbudget_ratio = 150\n", BT_CONFIG_EVALUE,
                "config.toml:1:9: [limits.api]: backoff: retry budget ratio is a percentage, "
                "0..100");
    parse_fails("[limits.api]\nburst = 5\n", BT_CONFIG_EVALUE,
                "config.toml:1:9: [limits.api] has no rate; set rate (tokens per period)");
    parse_fails("[limits.api]\nrate = 1.5\n", BT_CONFIG_ETYPE,
                "config.toml:2:1: limits.api.rate must be an integer (tokens per period), not a "
                "float");
}

/* ---------------------------------------------------------------- jobs */

Test(config_schema, job_kind_must_be_known)
{
    parse_fails("[jobs.a]\nkind = \"shell\"\n", BT_CONFIG_EUNKNOWN,
                "config.toml:2:1: jobs.a.kind = \"shell\" is not a known job kind (known: exec, "
                "http)");
    parse_fails("[jobs.a]\nkind = \"exce\"\n", BT_CONFIG_EUNKNOWN,
                "config.toml:2:1: jobs.a.kind = \"exce\" is not a known job kind; did you mean "
                "\"exec\"?");
    parse_fails("[jobs.a]\nmax_active = 1\n", BT_CONFIG_EVALUE,
                "config.toml:1:7: [jobs.a] has no kind; set kind to one of: exec, http");
    parse_fails("[jobs.\"nightly/backup\"]\nkind = \"exec\"\n", BT_CONFIG_EVALUE,
                "config.toml:1:7: job name 'nightly/backup' is not valid: use 1..63 characters of "
                "A-Z, a-z, 0-9, '_' or '-'");
}

Test(config_schema, job_references_must_be_defined)
{
    parse_fails("[breakers.db]\n[jobs.a]\nkind = \"exec\"\nbreaker = \"dbb\"\n", BT_CONFIG_EUNKNOWN,
                "config.toml:4:1: jobs.a.breaker = \"dbb\" is not defined in [breakers]; did you "
                "mean \"db\"?");
    parse_fails("[jobs.a]\nkind = \"exec\"\nbreaker = \"db\"\n", BT_CONFIG_EUNKNOWN,
                "config.toml:3:1: jobs.a.breaker = \"db\" is not defined in [breakers] (none is "
                "defined)");
    parse_fails("[limits.api]\nrate = 1\n[limits.mail]\nrate = 1\n"
                "[jobs.a]\nkind = \"http\"\nlimit = \"search\"\n",
                BT_CONFIG_EUNKNOWN,
                "config.toml:7:1: jobs.a.limit = \"search\" is not defined in [limits] (defined: "
                "api, mail)");
    parse_fails("[jobs.a]\nkind = \"exec\"\ntimeout = \"nightly\"\n", BT_CONFIG_EUNKNOWN,
                "config.toml:3:1: jobs.a.timeout = \"nightly\" is not defined in [timeouts] "
                "(defined: quick, default, bulk, import)");
    parse_fails("[jobs.a]\nkind = \"exec\"\ntimeout = \"bluk\"\n", BT_CONFIG_EUNKNOWN,
                "config.toml:3:1: jobs.a.timeout = \"bluk\" is not defined in [timeouts]; did you "
                "mean \"bulk\"?");
    /* the registry's default classes exist without [timeouts]; jobs may come
     * before the sections they name */
    bt_config_t c;
    parse_ok("[jobs.a]\nkind = \"exec\"\ntimeout = \"bulk\"\nbreaker = \"db\"\n[breakers.db]\n",
             &c);
    cr_assert_str_eq(c.jobs[0].timeout, "bulk");
    cr_assert_str_eq(c.jobs[0].breaker, "db");
    bt_config_deinit(&c);
}

Test(config_schema, params_become_json)
{
    bt_config_t c;
    parse_ok(
        "[jobs.a]\n"
        "kind = \"exec\"\n"
        "[jobs.a.params]\n"
        "s = \"quote \\\" backslash \\\\ nl \\n tab \\t cr \\r bell \\u0007 del \\u007f é ✓\"\n"
        "i = -42\n"
        "big = 9223372036854775807\n"
        "f = 1.5\n"
        "whole = 3.0\n"
        "tiny = 1e-300\n"
        "t = true\n"
        "n = false\n"
        "arr = [1, \"two\", [3.25, []], {x = 1}]\n"
        "odt = 1979-05-27T07:32:00.5-07:00\n"
        "ldt = 1979-05-27T07:32:00\n"
        "ld = 1979-05-27\n"
        "lt = 07:32:00\n"
        "\"key \\\"q\\\"\" = 1\n"
        "\"nul\\u0000key\" = \"a\\u0000b\"\n"
        "[jobs.a.params.nested.deeper]\n"
        "k = \"v\"\n",
        &c);
    cr_assert_str_eq(
        c.jobs[0].params_json,
        "{\"s\":\"quote \\\" backslash \\\\ nl \\n tab \\t cr \\r bell \\u0007 del \\u007f é ✓\","
        "\"i\":-42,\"big\":9223372036854775807,\"f\":1.5,\"whole\":3.0,\"tiny\":1e-300,"
        "\"t\":true,\"n\":false,\"arr\":[1,\"two\",[3.25,[]],{\"x\":1}],"
        "\"odt\":\"1979-05-27T07:32:00.5-07:00\",\"ldt\":\"1979-05-27T07:32:00\","
        "\"ld\":\"1979-05-27\",\"lt\":\"07:32:00\",\"key \\\"q\\\"\":1,"
        "\"nul\\u0000key\":\"a\\u0000b\",\"nested\":{\"deeper\":{\"k\":\"v\"}}}");
    bt_config_deinit(&c);

    parse_ok("[jobs.a]\nkind = \"exec\"\nparams = {}\n", &c);
    cr_assert_str_eq(c.jobs[0].params_json, "{}");
    bt_config_deinit(&c);

    parse_ok("[jobs.a]\nkind = \"exec\"\nparams = { f = 0.1, g = -0.0, h = 1e20 }\n", &c);
    cr_assert_str_eq(c.jobs[0].params_json, "{\"f\":0.1,\"g\":-0.0,\"h\":1e+20}");
    bt_config_deinit(&c);

    parse_fails("[jobs.a]\nkind = \"exec\"\nparams = { x = [1, inf] }\n", BT_CONFIG_EVALUE,
                "config.toml:3:20: jobs.a.params holds inf, which JSON cannot represent (job "
                "params are JSON)");
    parse_fails("[jobs.a]\nkind = \"exec\"\n[jobs.a.params]\ny = nan\n", BT_CONFIG_EVALUE,
                "config.toml:4:1: jobs.a.params holds nan, which JSON cannot represent (job params "
                "are JSON)");
}

/* ---------------------------------------------- pass-through and files */

Test(config_schema, toml_errors_pass_through_unchanged)
{
    const char *s = "[server]\nport 7878\n";
    bt_toml_doc_t *doc;
    bt_toml_error_t terr;
    cr_assert_eq(bt_toml_parse(s, strlen(s), "config.toml", NULL, &doc, &terr), BT_TOML_ESYNTAX);
    parse_fails(s, BT_CONFIG_ESYNTAX, terr.message);
    bt_config_error_t err;
    bt_config_t c;
    bt_config_parse(s, strlen(s), "config.toml", NULL, kinds, NKINDS, &c, &err);
    cr_assert_eq(err.line, terr.line);
    cr_assert_eq(err.column, terr.column);
    cr_assert_str_eq(err.detail, terr.detail);
}

Test(config_schema, error_fields_split_the_message)
{
    bt_config_t c;
    bt_config_error_t err;
    const char *s = "[runtime]\nthreads = 10000\n";
    bt_config_parse(s, strlen(s), "/etc/baton/config.toml", NULL, kinds, NKINDS, &c, &err);
    cr_assert_str_eq(err.file, "/etc/baton/config.toml");
    cr_assert_eq(err.line, 2);
    cr_assert_eq(err.column, 1);
    cr_assert_str_eq(err.detail,
                     "runtime.threads = 10000 is out of range 0..256 (0 = online CPUs)");
    cr_assert_str_eq(err.message, "/etc/baton/config.toml:2:1: runtime.threads = 10000 is out of "
                                  "range 0..256 (0 = online CPUs)");
    cr_assert_str_eq(bt_config_strerror(BT_CONFIG_ERANGE), "value out of range");
    cr_assert_str_eq(bt_config_strerror(12345), "unknown error");
}

Test(config_schema, load_reports_a_missing_file)
{
    bt_config_t c;
    bt_config_error_t err;
    cr_assert_eq(bt_config_load("/nonexistent/config.toml", kinds, NKINDS, &c, &err),
                 BT_CONFIG_ENOENT);
    cr_assert_str_eq(err.message,
                     "/nonexistent/config.toml: cannot open the config file: No such file or "
                     "directory");
    cr_assert_eq(err.line, 0);
}

Test(config_schema, load_reads_the_good_sample)
{
    bt_config_t c;
    bt_config_error_t err;
    const char *path = BATON_CONFIGS_DIR "/good.toml";
    cr_assert_eq(bt_config_load(path, kinds, NKINDS, &c, &err), BT_CONFIG_OK, "%s", err.message);
    cr_assert_str_eq(c.path, path);
    cr_assert_eq(c.log_level, BT_LOG_DEBUG);
    cr_assert_str_eq(c.server.address, "::1");
    cr_assert_eq(c.server.idle_timeout_ns, 60 * S);
    char dir[PATH_MAX], want[PATH_MAX + 32];
    cr_assert_not_null(realpath(BATON_CONFIGS_DIR, dir));
    snprintf(want, sizeof want, "%s/var/baton", dir);
    cr_assert_str_eq(c.store.state_dir, want); /* relative to the file, made absolute */
    cr_assert_str_eq(c.store.path, "/tmp/baton-test-runs.db");
    cr_assert_eq(c.executor.progress_every_ns, 500 * MS); /* an integer is milliseconds */
    cr_assert_eq(c.njobs, 2);
    cr_assert_str_eq(bt_config_find_job(&c, "export")->params_json,
                     "{\"url\":\"https://api.example.org/items?offset={offset}&limit={limit}\","
                     "\"limit\":100}");
    cr_assert_eq(bt_config_find_job(&c, "nightly")->recovery, EX_RECOVERY_RESUME);

    char *out = NULL;
    size_t outlen = 0;
    FILE *f = open_memstream(&out, &outlen);
    cr_assert_eq(bt_config_describe(&c, f), 0);
    fclose(f);
    cr_assert(strstr(out, "listen [::1]:9000") != NULL, "%s", out);
    cr_assert(strstr(out, "job        export: kind http") != NULL, "%s", out);
    cr_assert(strstr(out, " report 1m30s") != NULL, "%s", out);
    free(out);
    bt_config_deinit(&c);
}

Test(config_schema, load_reports_errors_with_the_path)
{
    static const struct {
        const char *file;
        int code;
        const char *detail;
    } bad[] = {
        {"bad_unknown_key.toml", BT_CONFIG_EUNKNOWN,
         ":7:1: unknown key 'max_runing' in [executor]; did you mean 'max_running'?"},
        {"bad_job_breaker.toml", BT_CONFIG_EUNKNOWN,
         ":6:1: jobs.sync.breaker = \"dbb\" is not defined in [breakers]; did you mean \"db\"?"},
        {"bad_syntax.toml", BT_CONFIG_ESYNTAX, ":2:6: expected '=' after key 'port', found '7'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char path[PATH_MAX], want[PATH_MAX + 200];
        snprintf(path, sizeof path, "%s/%s", BATON_CONFIGS_DIR, bad[i].file);
        snprintf(want, sizeof want, "%s%s", path, bad[i].detail);
        bt_config_t c;
        bt_config_error_t err;
        cr_assert_eq(bt_config_load(path, kinds, NKINDS, &c, &err), bad[i].code, "%s: %s",
                     bad[i].file, err.message);
        cr_assert_str_eq(err.message, want);
    }
}

Test(config_schema, the_projects_config_toml_loads_cleanly)
{
    bt_config_t c;
    bt_config_error_t err;
    int rc = bt_config_load(BATON_SOURCE_DIR "/config.toml", kinds, NKINDS, &c, &err);
    cr_assert_eq(rc, BT_CONFIG_OK, "%s", err.message);
    cr_assert(c.njobs >= 1);
    FILE *f = fopen("/dev/null", "w");
    cr_assert_eq(bt_config_describe(&c, f), 0);
    fclose(f);
    bt_config_deinit(&c);
}
