/*
 * gw_stubs.h: what the gateway harnesses link instead of the server. Replies are recorded, not
 * sent: a harness then checks that a refused input got exactly one problem and an accepted one
 * none. Include once, from the harness's own file.
 */
#ifndef FUZZ_GW_STUBS_H
#define FUZZ_GW_STUBS_H

#include "../gateway/gw.h"

static int replies;                /* problems replied for the current input */
static gw_problem_id last_problem; /* the last of them */

void
gw_reply_problem(gw_req *r, gw_problem_id id, const char *detail)
{
    (void)r;
    (void)detail;
    replies++;
    last_problem = id;
}

#endif
