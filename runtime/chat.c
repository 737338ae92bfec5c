/*
 * chat.c — the Gemma chat templates for one user turn (docs/models.md#chat-template).
 *
 * Gemma 1/2/3: output matches llama.cpp's built-in "gemma" template
 * (LLM_CHAT_TEMPLATE_GEMMA, add_ass = true): Gemma has no system role, so
 * the system text is put in front of the user text with a blank line, and
 * both are trimmed of ASCII whitespace first as llama.cpp's trim() does.
 * An empty (or all-blank) system text adds nothing.
 *
 * Gemma 4: output matches the official Jinja template (as shipped in
 * llama.cpp's models/templates/google-gemma-4-31B-it.jinja) rendered with
 * add_generation_prompt and thinking off: a system turn when there is a
 * system message, the user turn, then the model turn opened with an empty
 * thought channel.  Texts are trimmed as Jinja's trim does (Python's
 * str.strip: Unicode whitespace).  llama.cpp has no built-in Gemma 4
 * template; it runs the GGUF's Jinja.
 *
 * The leading <bos> is left to the tokenizer in both.  A template is a
 * list of parts, so that gmrt_chat_tokenize knows which control tokens the
 * markup put where: only those become control ids, and a "<end_of_turn>"
 * in the user's or the system's text stays text (it cannot close the turn
 * and forge a model turn).
 */
#include "gmrt.h"

#include <stdlib.h>
#include <string.h>

/* One piece of a template: markup, a control token of the markup, or the
 * caller's (trimmed) text. */
typedef struct part {
    const char *s;
    size_t n;
    bool ctrl;
} part;

#define MARK(lit) ((part){lit, sizeof lit - 1, false})
#define CTRL(lit) ((part){lit, sizeof lit - 1, true})
#define TEXT(p, n) ((part){p, n, false})
/* Parts one message adds at most (Gemma 1-3's first user turn: 6 and the
 * system texts, one part each), and the generation prompt. */
#define PARTS_PER_MSG 7
#define PARTS_TAIL 6

/* A formatted conversation: the text and where its control tokens start
 * (malloc'd, both). */
typedef struct chat_text {
    char *s;
    size_t len;
    size_t *ctrl_at;
    size_t n_ctrl;
} chat_text;

static void chat_text_free(chat_text *t)
{
    free(t->s);
    free(t->ctrl_at);
}

/* Concatenates the parts into a NUL-terminated string, noting the offset of
 * every control token.  False when out of memory. */
static bool join(const part *p, size_t n, chat_text *t)
{
    size_t len = 0, n_ctrl = 0;
    for (size_t i = 0; i < n; i++) {
        /* The lengths come from strlen of live strings, so the sum cannot
         * wrap; the check keeps that true if the inputs ever change. */
        if (p[i].n > SIZE_MAX - 1 - len)
            return false;
        len += p[i].n;
        n_ctrl += p[i].ctrl;
    }
    t->s = malloc(len + 1);
    t->ctrl_at = malloc((n_ctrl ? n_ctrl : 1) * sizeof *t->ctrl_at);
    if (!t->s || !t->ctrl_at) {
        chat_text_free(t);
        return false;
    }
    t->len = 0;
    t->n_ctrl = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i].ctrl)
            t->ctrl_at[t->n_ctrl++] = t->len;
        memcpy(t->s + t->len, p[i].s, p[i].n);
        t->len += p[i].n;
    }
    t->s[len] = '\0';
    return true;
}

/* isspace() in the "C" locale, spelled out so that the locale cannot
 * change which bytes are trimmed. */
static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' ||
           c == '\r';
}

/* Narrows s to its trimmed range [*start, *start + *len). */
static void trim(const char *s, const char **start, size_t *len)
{
    size_t b = 0, e = s ? strlen(s) : 0;
    while (b < e && is_blank(s[b]))
        b++;
    while (e > b && is_blank(s[e - 1]))
        e--;
    *start = s ? s + b : "";
    *len = e - b;
}

/* Python's str.isspace() for a code point: the characters Jinja's trim
 * strips. */
static bool is_py_space(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 ||
           c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
           c == 0x3000;
}

/* Decodes the well-formed UTF-8 character at s[0..n) into *cp; returns
 * its length, or 0 if the bytes are not one (then trimming stops). */
static size_t utf8_char(const unsigned char *s, size_t n, uint32_t *cp)
{
    size_t k = s[0] < 0x80 ? 1 : s[0] >= 0xC2 && s[0] <= 0xDF ? 2
             : s[0] >= 0xE0 && s[0] <= 0xEF ? 3 : s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : 0;
    if (k == 0 || k > n)
        return 0;
    uint32_t c = k == 1 ? s[0] : s[0] & (0x7Fu >> k);
    for (size_t j = 1; j < k; j++) {
        if ((s[j] & 0xC0) != 0x80)
            return 0;
        c = c << 6 | (s[j] & 0x3Fu);
    }
    *cp = c;
    return k;
}

/* Start of the UTF-8 character that ends at s[e - 1] (at most 4 back). */
static size_t char_start(const unsigned char *s, size_t b, size_t e)
{
    size_t i = e - 1;
    while (i > b && e - i < 4 && (s[i] & 0xC0) == 0x80)
        i--;
    return i;
}

/* Narrows s to its range without leading and trailing Unicode
 * whitespace. */
static void trim_range(const char *s, size_t n, const char **start, size_t *len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t b = 0, e = n;
    uint32_t cp;
    size_t k;
    while (b < e && (k = utf8_char(u + b, e - b, &cp)) > 0 && is_py_space(cp))
        b += k;
    while (e > b) {
        size_t i = char_start(u, b, e);
        if (utf8_char(u + i, e - i, &cp) != e - i || !is_py_space(cp))
            break;
        e = i;
    }
    *start = s + b;
    *len = e - b;
}

static void trim_unicode(const char *s, const char **start, size_t *len)
{
    trim_range(s ? s : "", s ? strlen(s) : 0, start, len);
}

/* The roles a message may have, by template meaning. */
typedef enum role { R_SYSTEM, R_USER, R_MODEL, R_BAD } role;

static role role_of(const char *r)
{
    if (!r)
        return R_BAD;
    if (strcmp(r, "system") == 0 || strcmp(r, "developer") == 0)
        return R_SYSTEM;
    if (strcmp(r, "user") == 0)
        return R_USER;
    if (strcmp(r, "assistant") == 0 || strcmp(r, "model") == 0)
        return R_MODEL;
    return R_BAD;
}

/* System messages first, then user and model turns alternating from a user
 * turn; GMRT_ERR_ARG naming the message otherwise. */
static gmrt_status check_roles(const gmrt_chat_msg *m, size_t n, gmrt_diag *diag)
{
    size_t i = 0, turn = 0;
    while (i < n && role_of(m[i].role) == R_SYSTEM)
        i++;
    for (; i < n; i++, turn++) {
        role r = role_of(m[i].role);
        if (r == R_BAD)
            return gmrt_fail(diag, GMRT_ERR_ARG, "message %zu: role \"%.32s\" is not system, "
                             "developer, user or assistant", i, m[i].role ? m[i].role : "");
        if (r != (turn % 2 == 0 ? R_USER : R_MODEL))
            return gmrt_fail(diag, GMRT_ERR_ARG, "message %zu: roles must be system messages "
                             "first, then user and assistant turns alternating from a user "
                             "turn (%s here)", i, m[i].role);
    }
    return GMRT_OK;
}

/* Gemma 1/2/3, as llama.cpp's built-in "gemma" template: the system texts,
 * trimmed, go in front of the first user text with a blank line; each turn
 * is <start_of_turn>{user|model}\n{text}<end_of_turn>\n; then
 * <start_of_turn>model\n.  Returns the part count. */
static size_t gemma_parts(const gmrt_chat_msg *m, size_t n, part *p)
{
    size_t k = 0, n_sys = 0;
    while (n_sys < n && role_of(m[n_sys].role) == R_SYSTEM)
        n_sys++;
    bool sys_done = false;
    for (size_t i = n_sys; i < n; i++) {
        bool user = role_of(m[i].role) == R_USER;
        const char *t;
        size_t nt;
        p[k++] = CTRL("<start_of_turn>");
        p[k++] = user ? MARK("user\n") : MARK("model\n");
        if (user && !sys_done) { /* llama.cpp concatenates the system texts */
            size_t k0 = k;
            for (size_t j = 0; j < n_sys; j++) {
                trim(m[j].content, &t, &nt);
                if (nt > 0)
                    p[k++] = TEXT(t, nt);
            }
            if (k > k0)
                p[k++] = MARK("\n\n");
            sys_done = true;
        }
        trim(m[i].content, &t, &nt);
        p[k++] = TEXT(t, nt);
        p[k++] = CTRL("<end_of_turn>");
        p[k++] = MARK("\n");
    }
    p[k++] = CTRL("<start_of_turn>");
    p[k++] = MARK("model\n");
    return k;
}

/* The first occurrence of the n-byte needle in s[0, len), or NULL. */
static const char *find(const char *s, size_t len, const char *needle, size_t n)
{
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(s + i, needle, n) == 0)
            return s + i;
    return NULL;
}

/* A model turn's text without its thought channels (<|channel>...<channel|>),
 * trimmed, as the official template's strip_thinking: written into dst
 * (room for strlen(s) bytes); returns its part. */
static part strip_thinking(const char *s, char *dst)
{
    size_t n = s ? strlen(s) : 0, k = 0;
    while (n > 0) {
        const char *open = find(s, n, "<|channel>", 10);
        const char *close = open ? find(open, n - (size_t)(open - s), "<channel|>", 10) : NULL;
        size_t keep = open ? (size_t)(open - s) : n;
        memcpy(dst + k, s, keep);
        k += keep;
        if (!close)
            break; /* an unclosed channel is dropped to the end, as split does */
        n -= (size_t)(close + 10 - s);
        s = close + 10;
    }
    const char *t;
    size_t nt;
    trim_range(dst, k, &t, &nt);
    return TEXT(t, nt);
}

/* Gemma 4, the official template with thinking off: <|turn>system\n{system}
 * <turn|>\n when the first message is a system one (even if empty), then
 * <|turn>{user|model}\n{text}<turn|>\n per turn (a model text without its
 * thought channels), then the model turn opened with an empty thought.
 * Returns the part count. */
static size_t gemma4_parts(const gmrt_chat_msg *m, size_t n, part *p, char *scratch)
{
    size_t k = 0, i = 0;
    if (n > 0 && role_of(m[0].role) == R_SYSTEM) {
        const char *t;
        size_t nt;
        trim_unicode(m[0].content, &t, &nt);
        p[k++] = CTRL("<|turn>");
        p[k++] = MARK("system\n");
        p[k++] = TEXT(t, nt);
        p[k++] = CTRL("<turn|>");
        p[k++] = MARK("\n");
        i = 1;
    }
    for (; i < n; i++) {
        role r = role_of(m[i].role);
        if (r == R_SYSTEM) /* a later system message: not in the template */
            continue;
        p[k++] = CTRL("<|turn>");
        if (r == R_USER) {
            const char *t;
            size_t nt;
            trim_unicode(m[i].content, &t, &nt);
            p[k++] = MARK("user\n");
            p[k++] = TEXT(t, nt);
        } else {
            p[k++] = MARK("model\n");
            p[k] = strip_thinking(m[i].content, scratch);
            scratch += p[k++].n;
        }
        p[k++] = CTRL("<turn|>");
        p[k++] = MARK("\n");
    }
    p[k++] = CTRL("<|turn>");
    p[k++] = MARK("model\n");
    p[k++] = CTRL("<|channel>");
    p[k++] = MARK("thought\n");
    p[k++] = CTRL("<channel|>");
    return k;
}

/* Formats the messages in a style into t.  GMRT_ERR_ARG for bad roles. */
static gmrt_status format(gmrt_chat_style style, const gmrt_chat_msg *m, size_t n,
                          chat_text *t, gmrt_diag *diag)
{
    memset(t, 0, sizeof *t);
    gmrt_status st = check_roles(m, n, diag);
    if (st != GMRT_OK)
        return st;
    if (n > (SIZE_MAX / sizeof(part) - PARTS_TAIL) / PARTS_PER_MSG)
        return gmrt_fail(diag, GMRT_ERR_LIMIT, "%zu messages", n);
    size_t text = 1; /* Gemma 4's model texts, stripped of thought, go here */
    for (size_t i = 0; i < n; i++)
        text += m[i].content ? strlen(m[i].content) : 0;
    part *p = malloc((n * PARTS_PER_MSG + PARTS_TAIL) * sizeof *p);
    char *scratch = malloc(text);
    bool ok = p && scratch &&
              join(p, style == GMRT_CHAT_GEMMA4 ? gemma4_parts(m, n, p, scratch)
                                                : gemma_parts(m, n, p), t);
    free(p);
    free(scratch);
    return ok ? GMRT_OK : gmrt_fail(diag, GMRT_ERR_NOMEM, "out of memory formatting the chat");
}

/* The one-turn form: an optional system message, then the user's. */
static size_t one_turn(const char *system, const char *user, gmrt_chat_msg *m)
{
    size_t n = 0;
    if (system)
        m[n++] = (gmrt_chat_msg){"system", system};
    m[n++] = (gmrt_chat_msg){"user", user ? user : ""};
    return n;
}

char *gmrt_chat_format(const char *system, const char *user)
{
    return gmrt_chat_format_style(GMRT_CHAT_GEMMA, system, user);
}

gmrt_chat_style gmrt_chat_style_of(const gmrt_vocab *v)
{
    if (v && (gmrt_vocab_is_bpe(v) || gmrt_vocab_find(v, "<|turn>", 7) >= 0))
        return GMRT_CHAT_GEMMA4;
    return GMRT_CHAT_GEMMA;
}

char *gmrt_chat_format_style(gmrt_chat_style style, const char *system,
                             const char *user)
{
    gmrt_chat_msg m[2];
    chat_text t;
    if (format(style, m, one_turn(system, user, m), &t, NULL) != GMRT_OK)
        return NULL;
    free(t.ctrl_at);
    return t.s;
}

gmrt_status gmrt_chat_tokenize_msgs(const gmrt_vocab *v, const gmrt_chat_msg *msgs, size_t n,
                                    bool add_bos, int32_t *out, size_t cap, size_t *out_n,
                                    gmrt_diag *diag)
{
    if (!v || !out_n || (!msgs && n > 0))
        return gmrt_fail(diag, GMRT_ERR_ARG, "gmrt_chat_tokenize: vocab, messages or out_n "
                         "is NULL");
    *out_n = 0;
    chat_text t;
    gmrt_status st = format(gmrt_chat_style_of(v), msgs, n, &t, diag);
    if (st != GMRT_OK)
        return st;
    st = gmrt_tokenize_marked(v, t.s, t.len, add_bos, t.ctrl_at, t.n_ctrl, out, cap, out_n,
                              diag);
    chat_text_free(&t);
    return st;
}

gmrt_status gmrt_chat_tokenize(const gmrt_vocab *v, const char *system, const char *user,
                               bool add_bos, int32_t *out, size_t cap, size_t *out_n,
                               gmrt_diag *diag)
{
    gmrt_chat_msg m[2];
    return gmrt_chat_tokenize_msgs(v, m, one_turn(system, user, m), add_bos, out, cap, out_n,
                                   diag);
}
