%% bench_erl: the Erlang peer of bench_runtime. Each actor is a process and
%% its mailbox the process's own; the workloads, parameters and output lines
%% are the same as the C program's (see bench/README.md).
%%
%%   erl -noshell -pa DIR -s bench_erl main -extra [--warmup W] [--runs R] WORKLOAD [ARG...]
%%
%% Schedulers and every other emulator setting are left at their defaults.
%% The main process waits on a latch made of an atomics counter: the process
%% that brings it to zero sends one message, like the C side's latch.
-module(bench_erl).
-export([main/0]).


main() ->
    Args = init:get_plain_arguments(),
    {Warm, Runs, Rest} = options(Args, 1, 5),
    case Rest of
        [Name | Params] -> run(Name, [list_to_integer(P) || P <- Params], Warm, Runs);
        [] -> usage()
    end,
    halt(0).

usage() ->
    io:format(standard_error, "usage: bench_erl [--warmup W] [--runs R] WORKLOAD [ARG...]~n", []),
    halt(2).

options(["--warmup", W | T], _, R) -> options(T, list_to_integer(W), R);
options(["--runs", R | T], W, _) -> options(T, W, list_to_integer(R));
options(Rest, W, R) -> {W, R, Rest}.

%% name, metric, default parameters
workloads() ->
    [{"pingpong", "ns_per_msg", [1000000]},
     {"counting", "ns_per_msg", [1000000]},
     {"fanin", "mmsg_per_s", [4, 10000000]},
     {"forkjoin", "ns_per_msg", [60, 10000]},
     {"fjcreate", "ns_per_actor", [1000000]},
     {"spawn", "ns_per_actor", [1000000]},
     {"ring", "ns_per_hop", [503, 10000000]},
     {"chameneos", "ns_per_meeting", [100, 200000]},
     {"big", "ns_per_msg", [120, 20000]},
     {"idle_bytes", "bytes_per_actor", [1000000]},
     {"idle_cpu", "cpu_percent", [1000, 2000]},
     {"ask", "ns_per_roundtrip", [100000]}].

run(Name, Given, Warm, Runs) ->
    case lists:keyfind(Name, 1, workloads()) of
        false -> usage();
        {_, Metric, Defaults} ->
            Params = Given ++ lists:nthtail(length(Given), Defaults),
            ArgStr = lists:join(",", [integer_to_list(P) || P <- Params]),
            Fun = list_to_atom(Name),
            lists:foreach(
              fun(I) ->
                      V = workload(Fun, Params),
                      erlang:garbage_collect(),
                      case I > Warm of
                          true ->
                              io:format("RESULT impl=erlang workload=~s args=~s metric=~s value=~.4f~n",
                                        [Name, ArgStr, Metric, float(V)]);
                          false -> ok
                      end
              end, lists:seq(1, Warm + Runs)),
            io:format("PEAK impl=erlang workload=~s args=~s rss_kb=~B~n",
                      [Name, ArgStr, status_kb("VmHWM:")])
    end.

%% ------------------------------------------------------------------ utils

now_ns() -> erlang:monotonic_time(nanosecond).

since(T0) -> now_ns() - T0.

status_kb(Key) ->
    {ok, B} = file:read_file("/proc/self/status"),
    [Line] = [L || L <- string:split(binary_to_list(B), "\n", all), lists:prefix(Key, L)],
    [_, Kb | _] = string:lexemes(Line, " \t"),
    list_to_integer(Kb).

rss_bytes() -> status_kb("VmRSS:") * 1024.

latch(N) ->
    A = atomics:new(1, []),
    atomics:put(A, 1, N),
    {A, self()}.

count_down({A, Waiter}) ->
    case atomics:sub_get(A, 1, 1) of
        0 -> Waiter ! latch_done, ok;
        _ -> ok
    end.

await() -> receive latch_done -> ok end.

compute(Theta) ->
    S = math:sin(Theta),
    S * S.

%% ------------------------------------------------------------- workloads

workload(pingpong, [N]) ->
    L = latch(1),
    Pong = spawn(fun pong/0),
    Ping = spawn(fun() -> receive start -> ping(Pong, N), count_down(L) end end),
    T0 = now_ns(),
    Ping ! start,
    await(),
    Ns = since(T0),
    Pong ! stop,
    Ns / (2 * N);
workload(counting, [N]) ->
    fan_in(1, N) / N;
workload(fanin, [P, N]) ->
    N * 1000 / fan_in(P, N);
workload(forkjoin, [K, N]) ->
    L = latch(K),
    Ws = [spawn(fun() -> fj_loop(N, 0.0, L) end) || _ <- lists:seq(1, K)],
    T0 = now_ns(),
    fj_send(0, N, Ws),
    await(),
    since(T0) / (K * N);
workload(fjcreate, [N]) ->
    L = latch(N),
    T0 = now_ns(),
    fj_create(N, L),
    await(),
    since(T0) / N;
workload(spawn, [N]) ->
    T0 = now_ns(),
    Pids = spawn_idle(N, []),
    Ns = since(T0),
    [P ! stop || P <- Pids],
    Ns / N;
workload(idle_bytes, [N]) ->
    erlang:garbage_collect(),
    Before = rss_bytes(),
    Pids = spawn_idle(N, []),
    After = rss_bytes(),
    [P ! stop || P <- Pids],
    max(After - Before, 0) / N;
workload(ask, [N]) ->
    %% gen_server:call's pattern: a monitored request, a reply matched by
    %% its reference, from the benchmark's own process.
    Echo = spawn(fun echo/0),
    T0 = now_ns(),
    ask_loop(Echo, N),
    Ns = since(T0),
    Echo ! stop,
    Ns / N;
workload(idle_cpu, [N, Ms]) ->
    Pids = spawn_idle(N, []),
    timer:sleep(100),
    {C0, _} = statistics(runtime),
    T0 = now_ns(),
    timer:sleep(Ms),
    {C1, _} = statistics(runtime),
    Pct = 100 * (C1 - C0) * 1000000 / since(T0),
    [P ! stop || P <- Pids],
    Pct;
workload(ring, [R, Hops]) ->
    L = latch(1),
    Nodes = [spawn(fun() -> receive {next, Next} -> ring_node(Next, L) end end)
             || _ <- lists:seq(1, R)],
    [First | _] = Nodes,
    lists:foreach(fun({P, Next}) -> P ! {next, Next} end,
                  lists:zip(Nodes, tl(Nodes) ++ [First])),
    T0 = now_ns(),
    First ! {token, Hops},
    await(),
    Ns = since(T0),
    [P ! stop || P <- Nodes],
    Ns / Hops;
workload(chameneos, [C, Meetings]) ->
    Main = self(),
    Mall = spawn(fun() -> mall(Meetings, none, 0, C, 0, Main) end),
    Cs = [spawn(fun() -> receive start -> Mall ! {meet, self(), Color}, creature(Mall, Color, 0) end end)
          || I <- lists:seq(0, C - 1), Color <- [I rem 3]],
    T0 = now_ns(),
    [P ! start || P <- Cs],
    Total = receive {mall_done, T} -> T end,
    Ns = since(T0),
    case Total =:= 2 * Meetings of
        true -> ok;
        false ->
            io:format(standard_error, "erlang: chameneos counted ~B, expected ~B~n",
                      [Total, 2 * Meetings]),
            halt(1)
    end,
    Ns / Meetings;
workload(big, [W, N]) ->
    L = latch(W),
    Ws = [spawn(fun() -> receive {init, All} -> big_worker(All, I, W, N, I * 7919 + 1, L) end end)
          || I <- lists:seq(1, W)],
    All = list_to_tuple(Ws),
    [P ! {init, All} || P <- Ws],
    T0 = now_ns(),
    [P ! start || P <- Ws],
    await(),
    Ns = since(T0),
    [P ! stop || P <- Ws],
    Ns / (2 * W * N).

pong() ->
    receive
        {ping, From} -> From ! pong, pong();
        stop -> ok
    end.

ping(_, 0) -> ok;
ping(Pong, N) ->
    Pong ! {ping, self()},
    receive pong -> ping(Pong, N - 1) end.

%% p producers send n messages in all to one counter; returns ns.
fan_in(P, N) ->
    L = latch(1),
    Counter = spawn(fun() -> count(N, L) end),
    Prods = [spawn(fun() -> receive go -> produce(Counter, Share) end end)
             || I <- lists:seq(0, P - 1),
                Share <- [N div P + case I < N rem P of true -> 1; false -> 0 end]],
    T0 = now_ns(),
    [Pr ! go || Pr <- Prods],
    await(),
    since(T0).

count(0, L) -> count_down(L);
count(K, L) -> receive data -> count(K - 1, L) end.

produce(_, 0) -> ok;
produce(To, K) -> To ! data, produce(To, K - 1).

fj_loop(0, _Acc, L) -> count_down(L);
fj_loop(K, Acc, L) ->
    receive {work, T} -> fj_loop(K - 1, Acc + compute(T), L) end.

fj_send(M, N, _) when M =:= N -> ok;
fj_send(M, N, Ws) ->
    Msg = {work, 37.2 + M * 1.0e-6},
    [W ! Msg || W <- Ws],
    fj_send(M + 1, N, Ws).

fj_create(0, _) -> ok;
fj_create(K, L) ->
    P = spawn(fun() -> receive {work, T} -> _ = compute(T), count_down(L) end end),
    P ! {work, 37.2},
    fj_create(K - 1, L).

spawn_idle(0, Acc) -> Acc;
spawn_idle(K, Acc) -> spawn_idle(K - 1, [spawn(fun idle/0) | Acc]).

idle() -> receive stop -> ok end.

ring_node(Next, L) ->
    receive
        {token, 0} -> count_down(L), ring_node(Next, L);
        {token, H} -> Next ! {token, H - 1}, ring_node(Next, L);
        stop -> ok
    end.

complement(A, A) -> A;
complement(A, B) -> 3 - A - B.

%% Left meetings to arrange, the waiting creature, faded count, creatures,
%% total meetings reported.
mall(Left, Waiting, Faded, C, Total, Main) ->
    receive
        {faded, Count} when Faded + 1 =:= C -> Main ! {mall_done, Total + Count};
        {faded, Count} -> mall(Left, Waiting, Faded + 1, C, Total + Count, Main);
        {meet, Who, _} when Left =:= 0 -> Who ! fade, mall(Left, Waiting, Faded, C, Total, Main);
        {meet, Who, Color} when Waiting =:= none ->
            mall(Left, {Who, Color}, Faded, C, Total, Main);
        {meet, Who, Color} ->
            {First, _} = Waiting,
            First ! {meet, Who, Color},
            mall(Left - 1, none, Faded, C, Total, Main)
    end.

creature(Mall, Color, Met) ->
    receive
        {meet, Other, OtherColor} ->
            New = complement(Color, OtherColor),
            Other ! {change, New},
            Mall ! {meet, self(), New},
            creature(Mall, New, Met + 1);
        {change, New} ->
            Mall ! {meet, self(), New},
            creature(Mall, New, Met + 1);
        fade ->
            Mall ! {faded, Met}
    end.

%% MINSTD: products stay small integers.
next_rand(X) -> X * 48271 rem 2147483647.

big_worker(All, Me, W, Left, Rng, L) ->
    receive
        {ping, From} -> From ! pong, big_worker(All, Me, W, Left, Rng, L);
        stop -> ok;
        _StartOrPong when Left =:= 0 -> count_down(L), big_worker(All, Me, W, 0, Rng, L);
        _StartOrPong ->
            R = next_rand(Rng),
            To0 = R rem (W - 1) + 1,
            To = case To0 >= Me of true -> To0 + 1; false -> To0 end,
            element(To, All) ! {ping, self()},
            big_worker(All, Me, W, Left - 1, R, L)
    end.

echo() ->
    receive
        {call, From, Ref} -> From ! {Ref, pong}, echo();
        stop -> ok
    end.

ask_loop(_, 0) -> ok;
ask_loop(Echo, N) ->
    Ref = erlang:monitor(process, Echo),
    Echo ! {call, self(), Ref},
    receive
        {Ref, pong} -> erlang:demonitor(Ref, [flush]);
        {'DOWN', Ref, process, _, _} -> exit(echo_died)
    after 5000 -> exit(ask_timeout)
    end,
    ask_loop(Echo, N - 1).
