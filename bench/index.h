/* bdr-corebench index (index.c): the chunk index as it grows. */
#ifndef BDR_BENCH_INDEX_H
#define BDR_BENCH_INDEX_H

int index_main(int argc, char **argv);

#endif
