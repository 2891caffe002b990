/*
 * fuzz_cli_export: organization exports as `defendable-verify export` reads them (cmd_export
 * of gateway/defendable-verify.c: JSON Lines of receipts and signed checkpoints, the chain,
 * the Merkle roots and the consistency of every checkpoint with the receipts before it).
 *
 * Input: a mode byte, then the export. Bit 0 re-signs every checkpoint line's note text with
 * the harness key first (a fuzzer never forges Ed25519), so mutated histories reach the
 * checkpoint comparisons; bit 1 asks for the --json report instead of text.
 *
 * Invariant beyond "no crash, no leak, no exit": the --json report is one JSON object.
 */
#include "cli_harness.h"

static dfd_note resign_note;

/* Each checkpoint line with its note re-signed by the harness key; other lines as they are. */
static void
resign_lines(const char *in, size_t len, dfd_buf *out)
{
    while (len > 0) {
        const char *nl = memchr(in, '\n', len);
        size_t n = nl ? (size_t)(nl - in) : len;
        json_t *obj = json_loadb(in, n, JSON_REJECT_DUPLICATES, NULL);
        json_t *note = json_object_get(obj, "note");
        bool done = false;

        if (json_is_string(note) &&
            dfd_note_parse(json_string_value(note), json_string_length(note), &resign_note) ==
                DFD_OK) {
            dfd_buf s;

            dfd_buf_init(&s);
            if (dfd_note_sign(&s, resign_note.text, resign_note.text_len, &skey) == DFD_OK &&
                json_object_set_new(obj, "note", json_stringn(s.data, s.len)) == 0) {
                char *line = json_dumps(obj, JSON_COMPACT);

                if (line != NULL) {
                    dfd_buf_puts(out, line);
                    done = true;
                    free(line);
                }
            }
            dfd_buf_free(&s);
        }
        if (!done)
            dfd_buf_append(out, in, n);
        json_decref(obj);
        if (nl == NULL)
            break;
        dfd_buf_putc(out, '\n');
        in += n + 1;
        len -= n + 1;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool json;
    dfd_buf resigned;

    if (size < 1 || size > (1u << 20))
        return 0;
    json = data[0] & 2;
    dfd_buf_init(&resigned);
    fuzz_input = data + 1;
    fuzz_input_len = size - 1;
    if (data[0] & 1) {
        resign_lines((const char *)data + 1, size - 1, &resigned);
        FUZZ_CHECK(!resigned.failed, "out of memory");
        fuzz_input = (const uint8_t *)resigned.data;
        fuzz_input_len = resigned.len;
    }
    capture_begin();
    (void)cmd_export(vkey_text, json, "fuzz-input");
    capture_end(json);
    dfd_buf_free(&resigned);
    return 0;
}
