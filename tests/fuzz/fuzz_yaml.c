/*
 * fuzz_yaml.c — the graph front end on arbitrary bytes: the YAML reader
 * (yaml_io.c), the schema (model.c), lowering to a graph and the memory
 * plan, as `gemmac plan` runs them on a file.  Every rejection must come
 * back as a gmc_diag, and printing that diag (with its source line and
 * caret) must be safe too.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "diag.h"
#include "graph.h"
#include "model.h"
#include "plan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *sink;
    if (!sink && !(sink = fopen("/dev/null", "w")))
        return -1;
    gmc_arena a;
    gmc_arena_init(&a);
    gmc_diag d;
    gmc_diag_clear(&d);
    gmc_model *m;
    gmc_graph *g;
    /* A small batch keeps lowering fast; the plan's size checks do not
     * depend on it. */
    gmc_status st = gmc_model_parse((const char *)data, size, "fuzz.yaml", &a, &m, &d);
    if (st == GMC_OK)
        st = gmc_graph_lower(m, 4, &a, &g, &d);
    if (st == GMC_OK)
        st = gmc_plan(g, &d);
    if (st == GMC_OK && gmc_plan_check(g, &d) != GMC_OK) {
        gmc_diag_print(&d, stderr);
        abort();
    }
    if (st != GMC_OK)
        gmc_diag_print(&d, sink);
    gmc_arena_deinit(&a);
    return 0;
}
