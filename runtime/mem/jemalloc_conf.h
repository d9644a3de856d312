/*
 * jemalloc_conf.h: the jemalloc options the runtime sets for its process
 * (runtime/mem/alloc.c, where they are explained). A header of its own so
 * that the benchmark floors (bench/baseline) allocate under the same ones.
 */
#ifndef BT_MEM_JEMALLOC_CONF_H
#define BT_MEM_JEMALLOC_CONF_H

#define BT_JEMALLOC_CONF                                                                           \
    "thp:always,metadata_thp:auto,tcache_nslots_small_max:4096,lg_tcache_nslots_mul:4"

#endif
