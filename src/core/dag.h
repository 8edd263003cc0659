/*
 * dag.h - workflow graphs: checks that steps and their dependencies form a
 * DAG and gives an order where every step comes after its parents (Kahn's
 * algorithm). Pure: no I/O; the caller owns every array.
 */
#ifndef JQ_DAG_H
#define JQ_DAG_H
#include <stdbool.h>

struct dag_edge { int parent, child; };

/* order gets n node indexes, parents first. False if there is a cycle;
 * *cyclic then names a node on it. */
bool dag_order(int n, const struct dag_edge *edges, int n_edges, int *order, int *cyclic,
               int *scratch /* 2n ints */);

#endif
