/* dag.c - see dag.h. O(n · edges), which is fine for workflow sizes (≤ 100 steps). */
#include "core/dag.h"

bool dag_order(int n, const struct dag_edge *edges, int n_edges, int *order, int *cyclic,
               int *scratch)
{
    int *indeg = scratch, *done = scratch + n, k = 0;
    for (int i = 0; i < n; i++)
        indeg[i] = done[i] = 0;
    for (int e = 0; e < n_edges; e++)
        indeg[edges[e].child]++;
    for (bool progress = true; progress && k < n;) {
        progress = false;
        for (int i = 0; i < n; i++) {
            if (done[i] || indeg[i] > 0)
                continue;
            done[i] = 1;
            order[k++] = i;
            progress = true;
            for (int e = 0; e < n_edges; e++)
                if (edges[e].parent == i)
                    indeg[edges[e].child]--;
        }
    }
    if (k == n)
        return true;
    int u = 0;
    while (done[u])
        u++;
    for (int step = 0; step < n; step++)     /* walk up through parents left: after n steps */
        for (int e = 0; e < n_edges; e++)   /* the walk is inside a cycle */
            if (edges[e].child == u && !done[edges[e].parent]) {
                u = edges[e].parent;
                break;
            }
    *cyclic = u;
    return false;
}
