// bench_caf: the CAF 0.17 peer of bench_runtime. Actors are CAF's default
// event-based (cooperatively scheduled) actors, with state in
// stateful_actor where they keep any; the workloads, parameters and output
// lines are the same as the C program's (see bench/README.md).
//
//   bench_caf [--warmup W] [--runs R] WORKLOAD [ARG...]
//
// Each run builds a fresh actor_system with the default configuration
// (work-stealing scheduler, one thread per CPU). Like the C side, the main
// thread waits on a latch (an atomic counter plus a condition variable) that
// the actors count down, and producers send in chunks, because a CAF
// handler, like a baton dispatch, is never preempted.
#include <caf/all.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace caf;

using start_atom = atom_constant<atom("start")>;
using ping_atom = atom_constant<atom("ping")>;
using pong_atom = atom_constant<atom("pong")>;
using data_atom = atom_constant<atom("data")>;
using continue_atom = atom_constant<atom("continue")>;
using work_atom = atom_constant<atom("work")>;
using token_atom = atom_constant<atom("token")>;
using meet_atom = atom_constant<atom("meet")>;
using change_atom = atom_constant<atom("change")>;
using fade_atom = atom_constant<atom("fade")>;
using faded_atom = atom_constant<atom("faded")>;

namespace
{

constexpr uint64_t chunk = 1000; // messages a producer sends per handler call

uint64_t now_ns()
{
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

uint64_t cpu_ns()
{
    rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t(ru.ru_utime.tv_sec) + uint64_t(ru.ru_stime.tv_sec)) * 1000000000u +
           (uint64_t(ru.ru_utime.tv_usec) + uint64_t(ru.ru_stime.tv_usec)) * 1000u;
}

uint64_t rss_bytes()
{
    FILE *f = std::fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    if (f == nullptr)
        return 0;
    if (std::fscanf(f, "%lu %lu", &size, &resident) != 2)
        resident = 0;
    std::fclose(f);
    return uint64_t(resident) * uint64_t(sysconf(_SC_PAGESIZE));
}

double compute(double theta)
{
    double s = std::sin(theta);
    return s * s;
}

struct latch {
    explicit latch(uint64_t n) : left(n) {}
    void count_down()
    {
        if (left.fetch_sub(1, std::memory_order_acq_rel) != 1)
            return;
        std::lock_guard<std::mutex> g(mu);
        done = true;
        cv.notify_one();
    }
    void wait()
    {
        std::unique_lock<std::mutex> g(mu);
        cv.wait(g, [this] { return done; });
    }
    std::atomic<uint64_t> left;
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
};

void stop_all(const std::vector<actor> &as)
{
    for (auto &a : as)
        anon_send_exit(a, exit_reason::user_shutdown);
}

// ---------------------------------------------------------------- ping-pong

behavior ponger(event_based_actor *)
{
    return {[](ping_atom) { return pong_atom::value; }};
}

struct pinger_state {
    uint64_t left = 0;
};

behavior pinger(stateful_actor<pinger_state> *self, actor pong, uint64_t n, latch *l)
{
    self->state.left = n;
    return {
        [=](start_atom) { self->send(pong, ping_atom::value); },
        [=](pong_atom) {
            if (--self->state.left == 0) {
                l->count_down();
                self->quit();
            } else {
                self->send(pong, ping_atom::value);
            }
        },
    };
}

double run_pingpong(actor_system &sys, const std::vector<uint64_t> &a)
{
    latch l(1);
    auto pong = sys.spawn(ponger);
    auto ping = sys.spawn(pinger, pong, a[0], &l);
    uint64_t t0 = now_ns();
    anon_send(ping, start_atom::value);
    l.wait();
    double ns = double(now_ns() - t0);
    anon_send_exit(pong, exit_reason::user_shutdown);
    return ns / (2.0 * double(a[0]));
}

// ------------------------------------------------------- counting, fan-in

struct counter_state {
    uint64_t count = 0;
};

behavior counter(stateful_actor<counter_state> *self, uint64_t target, latch *l)
{
    return {[=](data_atom) {
        if (++self->state.count == target) {
            l->count_down();
            self->quit();
        }
    }};
}

struct producer_state {
    uint64_t left = 0;
};

behavior producer(stateful_actor<producer_state> *self, actor to, uint64_t n)
{
    self->state.left = n;
    return {[=](continue_atom) {
        uint64_t k = std::min(self->state.left, chunk);
        for (uint64_t i = 0; i < k; i++)
            self->send(to, data_atom::value);
        self->state.left -= k;
        if (self->state.left > 0)
            self->send(self, continue_atom::value);
        else
            self->quit();
    }};
}

double fan_in(actor_system &sys, uint64_t p, uint64_t n)
{
    latch l(1);
    auto c = sys.spawn(counter, n, &l);
    std::vector<actor> prods;
    for (uint64_t i = 0; i < p; i++)
        prods.push_back(sys.spawn(producer, c, n / p + (i < n % p ? 1 : 0)));
    uint64_t t0 = now_ns();
    for (auto &pr : prods)
        anon_send(pr, continue_atom::value);
    l.wait();
    return double(now_ns() - t0);
}

double run_counting(actor_system &sys, const std::vector<uint64_t> &a)
{
    return fan_in(sys, 1, a[0]) / double(a[0]);
}

double run_fanin(actor_system &sys, const std::vector<uint64_t> &a)
{
    return double(a[1]) * 1e3 / fan_in(sys, a[0], a[1]);
}

// --------------------------------------------------------------- fork-join

struct fj_state {
    uint64_t count = 0;
    double acc = 0;
};

behavior fj_worker(stateful_actor<fj_state> *self, uint64_t target, latch *l)
{
    return {[=](work_atom, double theta) {
        self->state.acc += compute(theta);
        if (++self->state.count == target) {
            l->count_down();
            self->quit();
        }
    }};
}

double run_forkjoin(actor_system &sys, const std::vector<uint64_t> &a)
{
    uint64_t k = a[0], n = a[1];
    latch l(k);
    std::vector<actor> ws;
    for (uint64_t i = 0; i < k; i++)
        ws.push_back(sys.spawn(fj_worker, n, &l));
    uint64_t t0 = now_ns();
    for (uint64_t m = 0; m < n; m++)
        for (auto &w : ws)
            anon_send(w, work_atom::value, 37.2 + double(m) * 1e-6);
    l.wait();
    return double(now_ns() - t0) / double(k * n);
}

double run_fjcreate(actor_system &sys, const std::vector<uint64_t> &a)
{
    latch l(a[0]);
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < a[0]; i++)
        anon_send(sys.spawn(fj_worker, uint64_t(1), &l), work_atom::value, 37.2);
    l.wait();
    return double(now_ns() - t0) / double(a[0]);
}

// ------------------------------------------------------------- idle actors

behavior idle(event_based_actor *)
{
    return {[](int) {}};
}

// Fills every slot of out (sized by the caller, so its memory is not part
// of what is measured) with a new idle actor.
void spawn_idle(actor_system &sys, std::vector<actor> &out)
{
    for (auto &a : out)
        a = sys.spawn(idle);
}

double run_spawn(actor_system &sys, const std::vector<uint64_t> &a)
{
    std::vector<actor> as(a[0]);
    uint64_t t0 = now_ns();
    spawn_idle(sys, as);
    double ns = double(now_ns() - t0);
    stop_all(as);
    return ns / double(a[0]);
}

double run_idle_bytes(actor_system &sys, const std::vector<uint64_t> &a)
{
    std::vector<actor> as(a[0]);
    uint64_t before = rss_bytes();
    spawn_idle(sys, as);
    uint64_t after = rss_bytes();
    stop_all(as);
    return after > before ? double(after - before) / double(a[0]) : 0.0;
}

double run_idle_cpu(actor_system &sys, const std::vector<uint64_t> &a)
{
    std::vector<actor> as(a[0]);
    spawn_idle(sys, as);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    uint64_t c0 = cpu_ns(), t0 = now_ns();
    std::this_thread::sleep_for(std::chrono::milliseconds(a[1]));
    double pct = 100.0 * double(cpu_ns() - c0) / double(now_ns() - t0);
    stop_all(as);
    return pct;
}

// ------------------------------------------------------------- thread ring

using actors_ptr = std::shared_ptr<std::vector<actor>>;

behavior ring_node(event_based_actor *self, actors_ptr ring, size_t index, latch *l)
{
    return {[=](token_atom, uint64_t hops) {
        if (hops == 0)
            l->count_down();
        else
            self->send((*ring)[(index + 1) % ring->size()], token_atom::value, hops - 1);
    }};
}

double run_ring(actor_system &sys, const std::vector<uint64_t> &a)
{
    latch l(1);
    auto ring = std::make_shared<std::vector<actor>>();
    for (uint64_t i = 0; i < a[0]; i++)
        ring->push_back(sys.spawn(ring_node, ring, size_t(i), &l));
    uint64_t t0 = now_ns();
    anon_send((*ring)[0], token_atom::value, a[1]);
    l.wait();
    double ns = double(now_ns() - t0);
    stop_all(*ring);
    ring->clear(); // the nodes hold the vector: break the cycle
    return ns / double(a[1]);
}

// --------------------------------------------------------------- chameneos

enum color : int { blue, red, yellow, faded };

int complement(int a, int b)
{
    return a == b ? a : 3 - a - b;
}

struct mall_state {
    uint64_t left = 0;
    actor waiting;
    uint64_t faded = 0;
    uint64_t total = 0;
};

behavior mall(stateful_actor<mall_state> *self, uint64_t meetings, uint64_t creatures,
              std::atomic<uint64_t> *total, latch *l)
{
    self->state.left = meetings;
    return {
        [=](meet_atom, actor who, int c) {
            auto &st = self->state;
            if (st.left == 0) {
                self->send(who, fade_atom::value);
            } else if (!st.waiting) {
                st.waiting = who;
            } else {
                st.left--;
                self->send(st.waiting, meet_atom::value, who, c);
                st.waiting = nullptr;
            }
        },
        [=](faded_atom, uint64_t count) {
            self->state.total += count;
            if (++self->state.faded == creatures) {
                total->store(self->state.total);
                l->count_down();
                self->quit();
            }
        },
    };
}

struct creature_state {
    int color = 0;
    uint64_t met = 0;
};

behavior creature(stateful_actor<creature_state> *self, actor the_mall, int c)
{
    self->state.color = c;
    return {
        [=](start_atom) { self->send(the_mall, meet_atom::value, actor(self), self->state.color); },
        [=](meet_atom, actor other, int other_color) {
            auto &st = self->state;
            st.color = complement(st.color, other_color);
            st.met++;
            self->send(other, change_atom::value, st.color);
            self->send(the_mall, meet_atom::value, actor(self), st.color);
        },
        [=](change_atom, int new_color) {
            self->state.color = new_color;
            self->state.met++;
            self->send(the_mall, meet_atom::value, actor(self), new_color);
        },
        [=](fade_atom) {
            self->send(the_mall, faded_atom::value, self->state.met);
            self->quit();
        },
    };
}

double run_chameneos(actor_system &sys, const std::vector<uint64_t> &a)
{
    uint64_t c = a[0], meetings = a[1];
    latch l(1);
    std::atomic<uint64_t> total{0};
    auto m = sys.spawn(mall, meetings, c, &total, &l);
    std::vector<actor> cs;
    for (uint64_t i = 0; i < c; i++)
        cs.push_back(sys.spawn(creature, m, int(i % 3)));
    uint64_t t0 = now_ns();
    for (auto &x : cs)
        anon_send(x, start_atom::value);
    l.wait();
    double ns = double(now_ns() - t0);
    if (total.load() != 2 * meetings) {
        std::fprintf(stderr, "caf: chameneos counted %llu meetings, expected %llu\n",
                     (unsigned long long)total.load(), (unsigned long long)(2 * meetings));
        std::exit(1);
    }
    return ns / double(meetings);
}

// --------------------------------------------------------------------- big

struct big_state {
    uint64_t left = 0;
    uint64_t rng = 0;
};

behavior big_worker(stateful_actor<big_state> *self, actors_ptr all, size_t me, uint64_t n,
                    latch *l)
{
    self->state.left = n;
    self->state.rng = 0x9E3779B97F4A7C15ull * (me + 1);
    auto next = [=] {
        auto &st = self->state;
        if (st.left == 0) {
            l->count_down();
            return;
        }
        st.left--;
        uint64_t x = st.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        st.rng = x;
        size_t to = size_t((x >> 32) % (all->size() - 1));
        if (to >= me)
            to++;
        self->send((*all)[to], ping_atom::value);
    };
    return {
        [=](ping_atom) { return pong_atom::value; },
        [=](pong_atom) { next(); },
        [=](start_atom) { next(); },
    };
}

double run_big(actor_system &sys, const std::vector<uint64_t> &a)
{
    uint64_t w = a[0], n = a[1];
    latch l(w);
    auto all = std::make_shared<std::vector<actor>>();
    for (uint64_t i = 0; i < w; i++)
        all->push_back(sys.spawn(big_worker, all, size_t(i), n, &l));
    uint64_t t0 = now_ns();
    for (auto &x : *all)
        anon_send(x, start_atom::value);
    l.wait();
    double ns = double(now_ns() - t0);
    stop_all(*all);
    all->clear();
    return ns / (2.0 * double(w * n));
}

// --------------------------------------------------------------------- ask

// A blocking request from outside the actor system, as a server thread
// would make: CAF's scoped_actor request/receive, the idiom CAF offers for
// it. The echo actor answers ping with pong.
double run_ask(actor_system &sys, const std::vector<uint64_t> &a)
{
    auto echo = sys.spawn(ponger);
    scoped_actor self{sys};
    bool failed = false;
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < a[0] && !failed; i++)
        self->request(echo, std::chrono::seconds(5), ping_atom::value)
            .receive([](pong_atom) {}, [&](error &) { failed = true; });
    double ns = double(now_ns() - t0);
    anon_send_exit(echo, exit_reason::user_shutdown);
    if (failed) {
        std::fprintf(stderr, "bench_caf: ask failed\n");
        std::exit(1);
    }
    return ns / double(a[0]);
}

struct workload {
    const char *name;
    const char *metric;
    std::vector<uint64_t> full;
    double (*run)(actor_system &, const std::vector<uint64_t> &);
};

const workload workloads[] = {
    {"pingpong", "ns_per_msg", {1000000}, run_pingpong},
    {"counting", "ns_per_msg", {1000000}, run_counting},
    {"fanin", "mmsg_per_s", {4, 10000000}, run_fanin},
    {"forkjoin", "ns_per_msg", {60, 10000}, run_forkjoin},
    {"fjcreate", "ns_per_actor", {1000000}, run_fjcreate},
    {"spawn", "ns_per_actor", {1000000}, run_spawn},
    {"ring", "ns_per_hop", {503, 10000000}, run_ring},
    {"chameneos", "ns_per_meeting", {100, 200000}, run_chameneos},
    {"big", "ns_per_msg", {120, 20000}, run_big},
    {"idle_bytes", "bytes_per_actor", {1000000}, run_idle_bytes},
    {"idle_cpu", "cpu_percent", {1000, 2000}, run_idle_cpu},
    {"ask", "ns_per_roundtrip", {100000}, run_ask},
};

[[noreturn]] void usage()
{
    std::fprintf(stderr, "usage: bench_caf [--warmup W] [--runs R] WORKLOAD [ARG...]\n");
    std::exit(2);
}

} // namespace

int main(int argc, char **argv)
{
    int warmup = 1, runs = 5, i = 1;
    for (; i + 1 < argc && std::strncmp(argv[i], "--", 2) == 0; i += 2) {
        if (std::strcmp(argv[i], "--warmup") == 0)
            warmup = std::atoi(argv[i + 1]);
        else if (std::strcmp(argv[i], "--runs") == 0)
            runs = std::atoi(argv[i + 1]);
        else
            usage();
    }
    if (i >= argc)
        usage();
    const workload *w = nullptr;
    for (auto &x : workloads)
        if (std::strcmp(x.name, argv[i]) == 0)
            w = &x;
    if (w == nullptr)
        usage();
    std::vector<uint64_t> params = w->full;
    for (size_t k = 0; ++i < argc; k++) {
        char *end;
        unsigned long long v = std::strtoull(argv[i], &end, 10);
        if (k >= params.size() || *end != '\0' || v == 0)
            usage();
        params[k] = v;
    }
    std::string astr;
    for (size_t k = 0; k < params.size(); k++)
        astr += (k ? "," : "") + std::to_string(params[k]);
    for (int r = 0; r < warmup + runs; r++) {
        double v;
        {
            actor_system_config cfg;
            actor_system sys{cfg};
            v = w->run(sys, params);
        } // waits for every actor to finish
        if (r >= warmup)
            std::printf("RESULT impl=caf workload=%s args=%s metric=%s value=%.4f\n", w->name,
                        astr.c_str(), w->metric, v);
        std::fflush(stdout);
    }
    rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    std::printf("PEAK impl=caf workload=%s args=%s rss_kb=%ld\n", w->name, astr.c_str(),
                ru.ru_maxrss);
    return 0;
}
