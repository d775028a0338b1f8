/*
 * json_test.c - the strict JSON scanner: acceptance and rejection tables (JSONTestSuite
 * style y_/n_ cases), a differential table against Python's json module, numbers,
 * strings and escapes, depth, iteration spans, and the writers.
 */
#include "proto/json.h"
#include "core/buf.h"
#include "core/wsd.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Copies p to the very end of a page followed by an inaccessible page. */
struct guarded {
    uint8_t *map;
    size_t map_len;
    uint8_t *p;
};

static void guarded_init(struct guarded *g, const void *p, size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t pages = (len + page - 1) / page + 1;
    g->map_len = pages * page;
    g->map = mmap(NULL, g->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert(g->map != MAP_FAILED);
    cr_assert_eq(mprotect(g->map + (pages - 1) * page, page, PROT_NONE), 0);
    g->p = g->map + (pages - 1) * page - len;
    memcpy(g->p, p, len);
}

static void guarded_fini(struct guarded *g)
{
    munmap(g->map, g->map_len);
}

static int validate_guarded(const void *p, size_t len)
{
    struct guarded g;
    guarded_init(&g, p, len);
    int rc = json_validate(g.p, len, NULL);
    guarded_fini(&g);
    return rc;
}

#define S(lit) lit, sizeof(lit) - 1

struct json_case {
    const char *text;
    size_t len;
};

/* Must be accepted (y_ cases). */
static const struct json_case y_cases[] = {
    {S("{}")}, {S("[]")}, {S("0")}, {S("-0")}, {S("1")}, {S("-1")}, {S("123")},
    {S("1.5")}, {S("-1.5e10")}, {S("1E+2")}, {S("1e-2")}, {S("0.0")}, {S("0e0")},
    {S("1E400")}, {S("-123456789012345678901234567890")}, {S("true")}, {S("false")},
    {S("null")}, {S("\"\"")}, {S("\"a\"")}, {S(" [1] ")}, {S("\t\n\r [1]\r\n\t ")},
    {S("[1,2,3]")}, {S("[[],[[]]]")}, {S("{\"a\":1}")}, {S("{\"a\":{\"b\":[1,{}]}}")},
    {S("{\"a\":1,\"a\":2}")}, {S("[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]")},
    {S("[\"\\u0000\"]")}, {S("[\"\\u00e9\\u00E9\"]")}, {S("[\"\\ud834\\udd1e\"]")},
    {S("[\"\\uD834\\uDD1E\"]")}, {S("[\"\\uFFFF\"]")}, {S("[\"\xc3\xa9\"]")},
    {S("[\"\xe2\x82\xac\"]")}, {S("[\"\xf0\x9f\x98\x80\"]")}, {S("[\"\xef\xbf\xbf\"]")},
    {S("[\"\xf4\x8f\xbf\xbf\"]")}, {S("[\"\x7f\"]")}, {S("[\"/\"]")},
    {S("{ \"a\" : [ 1 , 2 ] , \"b\" : null }")}, {S("[-0.0e-0]")}, {S("[1e1,2E-1]")},
    {S("\"\\u2028\\u2029\"")}, {S("[\"a\\u0000b\"]")},
};

/* Must be rejected (n_ cases). */
static const struct json_case n_cases[] = {
    {S("")}, {S(" ")}, {S("[")}, {S("]")}, {S("{")}, {S("}")}, {S("[1,]")}, {S("[,1]")},
    {S("[1,,2]")}, {S("{\"a\":1,}")}, {S("{,}")}, {S("{\"a\"}")}, {S("{\"a\" 1}")},
    {S("{\"a\":}")}, {S("{a:1}")}, {S("{'a':1}")}, {S("['a']")}, {S("{1:1}")},
    {S("[1 2]")}, {S("[1]]")}, {S("[1] [2]")}, {S("1 2")}, {S("01")}, {S("-01")},
    {S("00")}, {S("1.")}, {S(".1")}, {S("-")}, {S("+1")}, {S("1e")}, {S("1e+")},
    {S("1.e1")}, {S("0x10")}, {S("NaN")}, {S("Infinity")}, {S("-Infinity")}, {S("[NaN]")},
    {S("tru")}, {S("truex")}, {S("nul")}, {S("True")}, {S("[null")}, {S("\"abc")},
    {S("\"\\\"")}, {S("\"\\x41\"")}, {S("\"\\u12\"")}, {S("\"\\u12G4\"")}, {S("\"\\a\"")},
    {S("\"\\ud834\"")}, {S("\"\\udd1e\"")}, {S("\"\\ud834\\u0041\"")},
    {S("\"\\ud834\\ud834\"")}, {S("\"\\ud834x\"")}, {S("\"\t\"")}, {S("\"\n\"")},
    {S("\"\x01\"")}, {S("\"\x1f\"")}, {S("\"\x80\"")}, {S("\"\xc0\xaf\"")},
    {S("\"\xc1\xbf\"")}, {S("\"\xe0\x80\xaf\"")}, {S("\"\xed\xa0\x80\"")},
    {S("\"\xf0\x80\x80\xaf\"")}, {S("\"\xf4\x90\x80\x80\"")}, {S("\"\xf5\x80\x80\x80\"")},
    {S("\"\xff\"")}, {S("\"\xc3\"")}, {S("\"\xe2\x82\"")}, {S("\xef\xbb\xbf{}")},
    {S("/* c */ {}")}, {S("{} // c")}, {S("[1]\x00")}, {S("\x00")}, {S("[\"a\"\x00]")},
    {S("\f[]")}, {S("[]\v")}, {S("[\xc2\xa0]")}, {S("'a'")}, {S("[1e1.5]")},
    {S("{\"a\":1 \"b\":2}")}, {S("[-]")}, {S("[--1]")}, {S("[1-2]")}, {S("[\"a\",]")},
};

Test(json, accepts_valid_documents)
{
    for (size_t i = 0; i < WSD_ARRAY_LEN(y_cases); i++) {
        const struct json_case *c = &y_cases[i];
        cr_assert_eq(validate_guarded(c->text, c->len), 0, "rejected y case %zu: %s", i,
                     c->text);
    }
}

Test(json, rejects_invalid_documents)
{
    for (size_t i = 0; i < WSD_ARRAY_LEN(n_cases); i++) {
        const struct json_case *c = &n_cases[i];
        cr_assert_eq(validate_guarded(c->text, c->len), WSD_EINVAL,
                     "accepted n case %zu: %s", i, c->text);
    }
}

Test(json, rejects_every_truncation_of_a_container)
{
    static const char doc[] =
        "{\"a\":[1,-2.5e3,\"x\\u00e9\\ud834\\udd1e\xc3\xa9\",true,false,null],\"b\":{}}";
    size_t len = sizeof(doc) - 1;
    cr_assert_eq(validate_guarded(doc, len), 0);
    for (size_t cut = 0; cut < len; cut++)
        cr_assert_eq(validate_guarded(doc, cut), WSD_EINVAL, "prefix of %zu accepted", cut);
}

/* Python's json module, made strict (see json_differential.py), on generated inputs. */
struct diff_case {
    const char *text;
    size_t len;
    bool valid;
};

/* BEGIN GENERATED by tests/unit/json_differential.py */
static const struct diff_case diff_cases[] = {
    {"{}", 2, true},
    {"[]", 2, true},
    {"0", 1, true},
    {"-0", 2, true},
    {"1.5e-3", 6, true},
    {"\"abc\"", 5, true},
    {"true", 4, true},
    {"null", 4, true},
    {"false", 5, true},
    {"{\"op\":\"publish\",\"group\":\"room:1\",\"data\":{\"text\":\"hi\",\"n\""
     ":[1,2.5,-3e2]}}", 71, true},
    {"{\"a\":[1,{\"b\":null}],\"c\":\"\\u00e9\\ud834\\udd1e\",\"d\":false}", 55, true},
    {"[1,-2,3.25,4e10,5E-5,-0.0,123456789012345678901234567890]", 57, true},
    {"[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\",\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\""
     "]", 32, true},
    {" { \"k\" : [ true , false , null ] } ", 35, true},
    {"[[[[[]]]],{\"x\":{\"y\":{\"z\":[]}}}]", 31, true},
    {"{\"id\":17,\"op\":\"ping\"}", 21, true},
    {"\"\\u0041\\u00E9\\uFFFF\"", 20, true},
    {"[0.1,10,100e-2,1E+2]", 20, true},
    {"\"abc\"\"", 6, false},
    {"nunu]ll}", 8, false},
    {"", 0, false},
    {"tr", 2, false},
    {"}}}", 3, false},
    {"n6ull", 5, false},
    {"{\"op\":\"publish\",\"gro", 20, false},
    {"-70", 3, true},
    {"]", 1, false},
    {" { \"k\" : [ true, fl\xef\x65 , null ] } ", 33, false},
    {"\"\\u004\\u00E9uFFFF\"", 18, false},
    {"tru\x1f\x0d\x65", 6, false},
    {"{}{}", 4, false},
    {" { \"k", 5, false},
    {"t\xe2uue", 5, false},
    {"\x1f\x09rue", 5, false},
    {"t-ue", 4, false},
    {"[1,-2,3.25,4e\xe2\x30,5E-5,-0.0,123456789012345678901234567890]", 57, false},
    {"[[[[[]]]],{\"x\":{\"y\":{\"z\":[]}}}\xbf", 31, false},
    {"\"a", 2, false},
    {"\x0a", 1, false},
    {"{\"id\x0a\x37:17,\"opop\":\"ping\"}", 24, false},
    {"[1,-2,3.25,4e10,5E-5,-0.0,123456789012345678901234567834567890]", 63, true},
    {"\xf4\x61\x62\x63\"", 5, false},
    {"abce", 4, false},
    {"tru\xf0", 4, false},
    {"[[[[[]]]],{\"x\":{\"y\":{\"z\":[z\":[]}}}]", 35, false},
    {" { \"k\" : [[ tr", 14, false},
    {" u ", 3, false},
    {"{\"a\":[1,{\"b\":null}],\"c\":\"\\u00e9\\ud834\\udd1e\",\"d\":false}\xed", 56, false},
    {"8rnull", 6, false},
    {"{\"a\":[1,{\"b\":null}],\"c\":\"tu0e9\\d834\\udd1e\",\"d\":false}", 53, false},
    {"u\"u\"\\u0041", 10, false},
    {"u0", 2, false},
    {"{\"id\":17", 8, false},
    {"{\"op\":\"publish\",\"grou\x0dp\":\"room:1\",\"data\":{\"text\":\"hi\","
     "\"n\":[1,2.\xbf,-3e2]\xc0}", 72, false},
    {"[0.1,10,10e-2,1e-2,1E+2]", 24, true},
    {"t", 1, false},
    {"f[alse", 6, false},
    {"fals0", 5, false},
    {"{1", 2, false},
    {"[a0", 3, false},
    {"{\"a:[1,{\"b\":", 12, false},
    {"[[[[[]]]],{,{\"x\":{l\"y\":{\"z\":[]}}}\xc0", 34, false},
    {"{\"{\"op\":\"publipubli", 19, false},
    {"\x80\x30", 2, false},
    {"[", 1, false},
    {"{\"id\":17\"op\":\"ping\"}\"}", 22, false},
    {".0", 2, false},
    {"{\"a\":\x01[1,{\"b\":null}],\"c\":\"\x0d\\u\":\"\\u00e9\\ud834\\udd1e\","
     "\"d\":false}", 62, false},
    {"[1,-2,3.25,4e10,5E-5,-0.0,123456789012345", 41, false},
    {"0ee", 3, false},
    {"a-b", 3, false},
    {"[[[[[]]]],{\"x\"8{\"y\":{\"z\":[]}}}]", 31, false},
    {"{\"op\":\"pub\":\"publish\",\"group\":\xbfroom:1\",\"data\":{\"text\":\""
     "hi\",\"n\":[[,2.5,-3e2]}}", 77, false},
    {"[0.1,70\x01\x31\x30\x30\x30\x65-2,1E+2]", 21, false},
    {"1.5/-38", 7, false},
    {"1t\x80\x65-3", 6, false},
    {"15e-\xc3\x35\x65-\xc3", 9, false},
    {"1.e-3", 5, false},
    {"{\"a\":[1,{\"b\":null}],\"c\xef:\"\\u00e9\\ud834\\udd1e\",\"d\":,\"d\":f"
     "alse}", 60, false},
    {"{\"op\":\"pulish\",\"group\":", 23, false},
    {"[[[[[]][[[[]]]],{\"x\"{\"y\":{\"z\":[\xc3]}}}]", 37, false},
    {"f\x1f\xf0\xef\x65", 5, false},
    {"[]]", 3, false},
    {"[\"\\\xc3\"\\\\\\/\\bf\\n\\r\\t\",\"\xc3\xa9\x38\x82\xac\xf0\x9f\x98\x80"
     "\"]", 32, false},
    {"[[b[[[]]]],{\"x\":{\"y\":{\"z\":[]}}}]", 32, false},
    {"[1,-2,3.25,4e10,5E-5,-0.0,1234567890123456789012345667890]90]", 61, false},
    {"1.\xed\x35\x37-3", 7, false},
    {"{\"a\":[1,{\"", 10, false},
    {"[0.1,10,100e-2,1", 16, false},
    {"[[[[[[[[[[]]]],{\"x\":{\"\":{\"y\":{\"z\"\xed[]}}}]", 40, false},
    {"[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\",\"\xc3\x31\xa9\xe2\xc3\xac\x33\xf0\x9f"
     "\x98\x80\"]", 34, false},
    {"fal", 3, false},
    {"f al]el]e", 9, false},
    {"+0", 2, false},
    {"btu", 3, false},
    {"flse", 4, false},
    {"n-ull", 5, false},
    {"[0.1,10a100e-2,1", 16, false},
    {" { \"k\" : [ true , fals", 22, false},
    {"\"\\u0041\\u00u00E9\\uFFFF\"", 23, false},
    {" { \"{ \"k\" \xef: ", 13, false},
    {" { \"k \"k\" : [ true , false , null ] } ", 38, false},
    {"[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\",\"\x1f\xc3\xa9\xe2\x82\xac\xf0", 28, false},
    {"t{", 2, false},
    {"nul", 3, false},
    {"80\xe2", 3, false},
    {"[[[", 3, false},
    {" { \"k\" : [ true , false , n\xc3ll ] } ", 35, false},
    {"\"aba", 4, false},
    {" { \"k\" : [ true , false ,5n n", 29, false},
    {"{\"i\":17,\"op\":\"pin", 17, false},
    {"nulbulb", 7, false},
    {"\"\\u0041\\u00E9\\", 14, false},
    {"{6[[[]]]],{\"x\":{\"y\":{\"z\":[]}", 28, false},
    {"{\"a\":{\"a\":[1,{\"b\":null}],\"c\":\"\\u00e9\\ud834\\udd1e\",\"d\":fal"
     "use}", 61, false},
    {"\"abc:\"bc\"", 9, false},
    {"7{}", 3, false},
    {".\xff\x65\x33", 4, false},
    {"{\"a\":[1,{a\"b\":null}],\"c\":\"a\\u00e9\\ud834\\udd1e\",\"d\":false}", 57, false},
    {"[1,-2,3.25,4e105E-5,-0.0,12345678t90123456789", 45, false},
    {"{\"op\":\"publish\",\"group\":\"room:m:1\",\"data\":{\"text\":\"hi\",\"n"
     "\":[1,2.5,-3e2]}}", 73, true},
    {"[0.[1,10,e00e-2,1E+2]", 21, false},
    {" { \"k\" : [ tr", 13, false},
    {"[1,-2,3.25,4e10,5E-5,-0.0,123456789012345\x00\x36\x37\x38\x39\x30\x31"
     "\x32\x33\x34\x35\x36\x37\x38\x39\x30]", 58, false},
    {"\"\\u\xed\x30\x34\x31\\u00", 11, false},
    {" { \x0ak\" : [ tru [ true , fal", 27, false},
    {"rue", 3, false},
    {"D", 1, false},
    {"[0.1,10,10,10,100e-2,1E+2]", 26, true},
    {"\xff\xf4", 2, false},
    {"{D", 2, false},
    {"{\"op\"\"publish\",\"group\":\"room:1\",\"data\":{\"", 41, false},
    {"[0.1410,100e-2,1E02", 19, false},
    {"[0.1,10,100e-2,1aE+2]", 21, false},
    {"trueue", 6, false},
    {" { { ", 5, false},
    {"[1,-\xf0,3.25,4e10,5E-55,", 22, false},
    {"ru,", 3, false},
    {"nullull", 7, false},
    {"{\"op\":\"publish\",0groupa:\"room:1\",\"data\":{\"text\":\"hi\",\"n\":["
     "1,2", 61, false},
    {"1.5e-\xef", 6, false},
    {"fals1", 5, false},
    {"3", 1, true},
    {"\xbf\x30\xf0", 3, false},
    {"[.1,10,100e-2,1E+2]", 19, false},
    {"{\"a\":[1,{\"b\":nul", 16, false},
    {"-E", 2, false},
    {"1,-2,3.25,4e10,5E-5,-0.0,123456789012345678901234567890]", 56, false},
    {"0\xf5\x30\xf5\xf5", 5, false},
    {"{\"op\":\"publish\",\"group\":\"room:1\",\"data\":{\"text\":\"hi\",\"n\""
     ":[1, 2.5,-3e2]}}", 72, true},
    {"1", 1, true},
    {"alse", 4, false},
    {"ulll", 4, false},
    {"{\"id\":17,\"op\":\"pi[g\"}", 21, true},
    {"{\"a\":[\"a\":[1,{\"b\":null}],\"c\":\"\\u00:\"\\u00e9\\u834\\udd1e\",\""
     "d\":false}", 65, false},
    {"\"abcb\x09\x63\"", 8, false},
    {"fl\x1f\x65", 4, false},
    {"\"bc8\"", 5, true},
    {" { \"k\"\xc0 : [ true , false , null ] } ", 36, false},
    {"nullnull", 8, false},
    {"][0", 3, false},
    {"{\"op\":\"publish\",\"group\":\"room:1\",\"data\":{\"text\"\x09\"hi\",\""
     "n\":[1,2.5,-3e2]}}", 71, false},
    {"[\"\\\"\\\\\\/\\b\\f\\n\\r\\t-\",", 21, false},
    {"[\"\\\"\\\"\\\\\\/\\b\\f\\n\\r\\t\",\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98"
     "\x80\"]", 34, true},
    {"[1,-2,3.25,4e10,5E-5,-0.0,12345678912345678901234567890]", 56, true},
    {"\xf5null", 5, false},
    {"2.5e", 4, false},
    {"[0", 2, false},
    {"{\"id\":17,\"", 10, false},
    {"[\"\\\"\"\\\\\\/\\b\\f\\n\\r\\t\",\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"
     "\"]", 33, false},
    {"{\"id\":1\xc3\x37,\"op\":\"ping\"}", 22, false},
    {"{\"op\":\"pblish\",\"group\":\"room:1\",\"data\":{\"text\":\"hi\",\"n\":"
     "[1,2.5,-3e2]}}", 70, true},
    {"0\xed\x30", 3, false},
    {"[1,-,", 5, false},
    {"trueee", 6, false},
    {"tru", 3, false},
    {"\"abbc\"abc\"", 10, false},
    {"[1,-2,3.25,4e10,5E-5,-0", 23, false},
    {"f", 1, false},
    {"[0.1,10,1[0e-2,1E+2]", 20, false},
    {"\"\\u00041\\u00", 12, false},
    {"\"\\u9041\\u00E9\\uFFFF\"", 20, true},
    {"[1,-2,3.25,4e10,5E-5,-0.0,1234567890123456-78901234567890]", 58, false},
    {"[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\",\"\xc3\x09\xe2\x82\xac\xf0\x9f\x98\x80"
     "\x01\x66]", 33, false},
    {"[][]", 4, false},
    {"[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\",\"\xc3\xa9\xe2\x82\xac\xf0\x9f\xf4\x98"
     "\x80\"]", 33, false},
    {"[0.1,10,100,100e-2,1E+2\xf0", 24, false},
    {"fals\x1f\x65\x36", 7, false},
    {"fba}lse", 7, false},
    {"[1,-2,3.25,4e10,5E-5,-0.0,12345678901234567890123s567890]", 57, false},
    {"tt", 2, false},
    {"7sl\"l", 5, false},
    {"\x0dnll", 4, false},
    {"{\"op\x09:\"publish\",\"group\":\"room:1\",\"data\":{\"text\":\"hi\",\"n"
     "\":[1,2.5,-3eu2]}}", 72, false},
    {"{\"\x01\x64\":17,\"op\":\"ping", 19, false},
    {"{1}{", 4, false},
    {"\":\\u0040041\\u01\\u00E9\\uFFFF\"", 28, false},
    {"\x00[][", 4, false},
    {"fae\xed", 4, false},
    {"[[[[[]]]],\"x\":{\"y\":{\"z\"\x0a:[]}}}]]", 32, false},
    {"[[[[[[[[", 8, false},
    {"[0.1,10,100e-2,1E+\xbf\x32]", 21, false},
    {"nl", 2, false},
    {"-2", 2, true},
    {"[1,-2,3.25,4e10,5E-5,-0.0,12346789012345678901234567890]", 56, true},
    {" { \"k\": [ true , false , null ] } ", 34, true},
    {"[\"\x0a\\\"\\\\\\/\\b\\f\\n\\r\\t\",\"\xc3\xa9\xe2\x82\xac\xf0\xef\x9f"
     "\x98\x80\"]", 34, false},
    {"[04.1,10,100ae-2,1E+2]", 22, false},
    {"\"abcabc\"/", 9, false},
    {"{3} ", 4, false},
    {"\"asc\"", 5, true},
    {" { k\" : [ true , false , n , null ] } ", 38, false},
    {"2", 1, true},
    {"{ \"k\" : [ true , false , null ] } ", 34, true},
    {"\"a\x0d\x62\x63\"", 6, false},
    {" { \"k\"\" : [ : [ true , false , ull ] } ", 39, false},
    {"[1,-2,3.25,4e10,5E-5,-0.0,12", 28, false},
    {"\"\\u0041u00E9\\9\\uFFFF\"", 21, false},
    {"{\"op\":\"publish\",\"group\":\"rom:1\",\"data\":{\"text\":\"hi\",\"n\":"
     "[1,2.5,", 63, false},
    {"9\\u0041\\u00E9\\uFF\"", 18, false},
    {"null8", 5, false},
    {"{8", 2, false},
    {"{\"op\":\"publish\",\"group\"\"room:1\",\"data\":{{\"text\":\"hi\",\"n\""
     ":[1,2.5,-3e2]}}", 71, false},
    {"8\x7f", 2, false},
    {" { \"k\" : [ true , false , null ] } \\", 36, false},
    {" { \"k\" : [ true ,\xf0\x66\x61lse", 23, false},
    {" { \"k\" : [ ,tru\xed\x65 , false , null ] } ", 37, false},
    {"f\x7f\x61\x38se", 6, false},
    {"nu\xf0", 3, false},
    {" { \"k\" : :\xff[ t", 14, false},
    {"{\"a\":[1,{\"b,{\"b\":null}],\"c\":\"\\u00e9\\ud834\\udd1e\",\"d/\":fals"
     "e}", 60, false},
    {"\xbf[]", 3, false},
    {"{\"op\":publish\",\"group\":\"room:1\",\"data\":\xc3\"text\":\"hi\",\"n"
     "\":[1,2.5,-3e2]}}", 70, false},
    {"{\"id\":17,\"op\":\"pi\":\"ping\"}", 26, false},
    {"{\"op\":\"{publish\",\"group\":\"ro", 28, false},
    {"\"[\"\\\"\\\\\\/\\b\\f\\/\\b\\f\\n\\r\\t\",\"\xc3\xa9\xe2\x82\xac\xf0"
     "\x9f\x98\x80\"]", 39, false},
    {"[:", 2, false},
    {"{\"op\":\"publish\",\"group\":\"room:1\",\"data\":{\"t", 43, false},
    {"a", 1, false},
    {"[[[[[]]\\]],{\"x\"8{\"y\":{\"z\":[]}}}]", 32, false},
    {"[1,-2,3.25,4e18,5E-5,-0.0,1234567890123456789012\x0d\x33\x34\x35\x36\x37"
     "\x38\x39\x30]", 58, false},
    {"[0.1,10,-100e-", 14, false},
    {" a{ \"k\" :", 9, false},
    {"{\"op\":\"publish\",\"gro{up\":\"room:1\",\"data\":{\"text\":\"hi\",\"n"
     "\":[1,2.5,-3e2]}}", 72, true},
    {"[1,-2,3.25,4e10,5E10,5E-5,-0.0,123456789012345678901234567890]", 62, true},
    {"{}u{}u", 6, false},
    {"[[[[]]]]-{\"x\":{\"s\":{\"z\":[]}}}]", 30, false},
    {"abc\"\xed", 5, false},
    {"{\"a\":[1,{\"b\":null}],\"c\":\"\\u00e9\\ud8", 35, false},
    {"\"\xff\x62\"", 4, false},
    {"[1,2,3.25,4e10,5E-5,-0.0,1234567890123", 38, false},
    {"nu", 2, false},
    {"[[[[[]]]][[]]]],{\"x\"", 20, false},
    {"{\"a\":[1,{\"b\":null}],\"c\":\"\\u00\xf4\x39u", 32, false},
    {"[0.1,10,100e-2,E+D]E+2]", 23, false},
    {"[\xc3\\\"\\\\\\/\\b\\f\\n\\r\\t\",\"\xc3\xa9\xe2\x82\xf0\x9f\xac\xf0\x9f"
     "\x98\x80\"]", 34, false},
    {"l{ \"k\"6 :8 [ true , false , null ] } ", 37, false},
    {"[\"\\\"\\\\\\/\\\\f\\n\\r\\t\",\"\xc3\xa9\xe2\x82\xac\xf0\x66\x80\"]", 30, false},
    {"[1,-2,3.25,4e10,5E-5,-0.0,1e34567789012345", 42, false},
    {"[0.1,0,100", 10, false},
    {"[\"\\\"\\\\\\//\\b\\f\\n\\r\\t\",\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"
     "\"]", 33, true},
    {"{\"id\":17\"op\":\"p", 15, false},
    {"t[ue", 4, false},
    {" { \"k\" : [ true ,false , null ] } ", 34, true},
    {"\xf5\x66lse", 5, false},
    {"0b", 2, false},
    {"[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"t\",\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98"
     "\x80\"]", 34, false},
    {"[0..", 4, false},
    {"[\"\\\"\\\\\\/\\b6\\f\\n\\r\\t\",\"n\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"
     "\"", 33, false},
    {"{\"op\":\"publish\",\"group\":\"room:1\",\"data\":{\"text\":\"hi\",\"n\""
     ":[1,2.,-3e2]}}", 70, false},
    {"15e---3", 7, false},
    {" { \"k\"  \"", 9, false},
    {"\"\\u0041\\u00E9\\uFFFF\\uF", 22, false},
    {" { \"k\" : [ true , \xef\x66\x61lse , nll ] }9 ", 36, false},
    {"[\"\\\"\\\\\\/\\b\\f\\\\r\\t\",\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"]", 31, true},
    {"{\"opp\":\"publish\",\"group\":\"room:1\",\"data\":{\"text\":\"hhi\",\"n"
     "\":[1,2.5,-3e2]}}", 73, true},
    {"\xefulll", 5, false},
    {"eabc\"", 5, false},
    {"nulull", 6, false},
    {"{", 1, false},
    {" { \"k\" : [ true , faalse , nuull ] } ", 37, false},
    {"[[[[[]]]],{\"x\":{\"y\"{\xe2\"\xc3\":[]}}}]", 31, false},
    {"[[[[[]]]],{\"x\":{\"y\":{\"z{:[]}}}]", 31, false},
    {"{\"id\":17,op\":\"ping\"\xf5}", 21, false},
    {"\"\\u0041\\u00E7\\uFFFF", 19, false},
    {"{\"a\":[1,{", 9, false},
    {"[\"4\\\"\\\\\\/\\b\\+\\n\\r\\t\",\"\xc3\xa9\xe2\x33\xac\xf0\x9f\x98\x80"
     "\"]", 33, false},
    {"{\"op\":publish\",\"group\":\"room:1\",\"data\":{\"text\":\"hi\",\"n\":["
     "1,2.5,-3e2]}}", 70, false},
    {"..", 2, false},
    {"[0.1,-", 6, false},
    {"][]", 3, false},
    {"{\"op\":\"publish\",\"group\":\"room:1\",\"data\":{\"text\":\"hi\",\""
     "\x80n\":[1,2.5,-3e2]}}", 72, false},
    {"f\x01", 2, false},
    {"00", 2, false},
    {"[1,-2,3.2,4e10,5E-5,-0.0,123456789012345678901234567890]", 56, true},
    {"[0u1,10,100e-2,18E+2]", 21, false},
    {"+-0", 3, false},
    {"[1,-2,3.25,4e10,5E-5,-0.0,12.0,12r45678901", 42, false},
    {"tru{ru{", 7, false},
    {" { \"k\" : [ true , false , nll ]] } ", 35, false},
    {"[1,-2,3.2-2,3.25,4e10,5E-5,-0.0,123456789012345678901234567890]", 63, false},
    {"[\"\\\"\\\\\\/\\8b6f\\n\\r\\t\",\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\""
     "]", 33, false},
    {"ru\\", 3, false},
    {"nulllnulll", 10, false},
    {"[[[[[]]]],{\"x\":{\xbfy\":{\"z\":[]}}]", 30, false},
    {"0\x80", 2, false},
    {"\"aabc\"", 6, true},
    {" { \"k\"{ \"k\" : [ true , fal falsef, null ] } ", 44, false},
    {"[1,-2,3.25,4e10,5E-5,-0.0,123456789012", 38, false},
    {"30\xed", 3, false},
    {"{\"a\":[1,{\"b\":null}],\"c\":\"u00e9\\ud834\\udd1e\",\"d\":false}", 54, true},
    {"{\"a\":[1,{\"b\":ull}],\"c\":\"\\u00e9\\ud834\\udd1e\",\"d\":false}", 54, false},
    {"{\"id\":17,\"op\":\"p\xf4ng\"}", 21, false},
    {"[[[[[]]]],{\"x\"{\"y\":{\"z\":[]}}}]", 30, false},
    {"\"\\u\xbf\x30\x30\x34\\u00Eu00E9\\uFFFF\"", 24, false},
    {"1\x00\x35\x65-3", 6, false},
    {" { \"k\" : [ true , false , null ] }", 34, true},
    {"[1,-2,3.25,4e10,5E-5,-0.0,1234567890123456789012345678+90]", 58, false},
    {"[[", 2, false},
    {"\\81.5e-3", 8, false},
    {"[\"\\\"\\\\\\/a\\b\\f\\n\\r\\t\",\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"
     "\"]", 33, true},
    {"99", 2, true},
    {"{\"op\"p\":\"publis", 15, false},
    {"[\"\\\"\\\\\\/\\b\\f\\n\\\\2\",\"\xc3\xef\xa9\xe2\x82\xac\xf0\x9f\x98"
     "\x80\"]", 32, false},
    {"[1,-2,3.2E,4e10,5E-5,-0.0,123}56789012n45678901234567890]", 57, false},
    {"\"\\u0041\\0E9\\uFFFFuFFFF\"", 23, false},
    {"[[[[[]]]],{\"x\":{\"y\":{\"z\"", 24, false},
    {"[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\",\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x82"
     "\xac\xf0\x9f\x98\x80\"]", 37, false},
    {"-", 1, false},
    {"{rue", 4, false},
    {"{\"a\":[1,{\"b\":null}],\"c\":\"r\x0d\\\\u00e9\\ud834\\udd1e\",\"d\":fal"
     "se}", 58, false},
    {"\"\\u00\xc0\x34\x31\\u00", 12, false},
    {"[\"\\\x01\\\\\\/\\/\\E\\f\\n\\r\\t\",\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98"
     "\x80\"]", 34, false},
    {"[[[[[]]]],{\"x\xef\":{\"1\":{\"{\"z\":[]}}}]", 34, false},
    {"[0.1,1s0,100-2,1E+2", 19, false},
    {"[0.\xe2\x31,10,,10,100e-2,1E+2]", 25, false},
    {"\x09.}", 3, false},
    {"[[[[[]]8]],{\"x\":{\"y\"{\"z\":[]}}]", 30, false},
    {" { \"k\" :\xe2[ true , false , null ] } ", 35, false},
    {"0.1,/0,1000e-2,1E+2]", 20, false},
    {"{\"a\":[1,{\"b\":null}],\"c\":\"\\u00e0e9\\ud834\\udd1e\",\"d\":false}", 57, true},
    {"[[[[[].]]],{\"x\":{\"y\":{\"z\":[]}}}]", 32, false},
    {"[[[[[]]]\x80,{\"\\\":{\"y\":{\"z\":[]}", 28, false},
    {"{op\":\"publish\",\"group\":\"room:1\",\"data\":{\"text\":\"hi\",\"n\":["
     "1,2.5,-3e2]}}", 70, false},
    {"{\"id\":17,\"op\":3\"ping\"}", 22, false},
    {"-0E0", 4, true},
    {"\"\\u004\\u0041\\u00E9\\u\xc0\x46\x46\x61\x46\x46\"", 27, false},
    {"[0.1,10,00e-2,1E+2]", 19, false},
    {"\xbf\x35\x45\x65-3", 6, false},
    {"[1,-2,325,4e10,5E-5,-0.0,123456789012345678901234567890]", 56, true},
    {"000", 3, false},
    {"-0a", 3, false},
    {"1.5e-,", 6, false},
    {"\"atc\"", 5, true},
    {"1.5-\xf4\x33\x33", 7, false},
    {"{\"id\":17,\"op\":\"pin\x7fg\"", 21, false},
    {" { \"k\"e : [ ttrue , false , null ] } ", 37, false},
    {"tru8", 4, false},
    {"atrul", 5, false},
    {"\"abcabc\"", 8, true},
    {"[[[[[]]]],{\"x:{\"y\":{\"z\":[]}}}]", 30, false},
    {"[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"\x0a,\"\xc3\xa9\xe2\x82\xac\xf0\xa9\xe2"
     "\x82\xac\xf0\x9f\x98\x80\"]", 38, false},
    {"\"ab", 3, false},
    {"-\xbf", 2, false},
    {"[0.,10,100e-2,1E+2]", 19, false},
    {" { \"k\" : [ true , fase , null ] } ", 34, false},
    {"[88\xe2]", 5, false},
    {"t\xef\x61\x62\"", 5, false},
    {" { \"k\" : [ true , fa2se , null ] }ll ] } ", 41, false},
    {" { \"k\" : [ true , fals+e , null ] }", 35, false},
    {"flsel", 5, false},
    {"\"+a", 3, false},
    {"{\"idd\":17,\"op\":", 15, false},
    {"ru", 2, false},
    {"fa", 2, false},
    {"{\"a\":[1,{\"b\":nullnull}],\"c\"\"c\"c\":\"\\u00e9\\ud834\\udd1e\",\"d"
     "\":false}", 64, false},
    {"{\"id\":\x7f\x37,\"op\":\"ping/}", 21, false},
    {"{\"a\":[1,{\"b\":null}],\"c\":\"\\00e9\\ud834\\udd1e\",\"d\":\":false}", 56, false},
    {"\xff\"\x1f\x64\":17,\"op\":\"ing\"}", 20, false},
    {"[3]", 3, true},
    {"\"\\uD0041\\u00E9\\uFFFF", 20, false},
    {"trtr", 4, false},
    {"}}", 2, false},
    {"1.5", 3, true},
    {" { \"k\" : [ true , false , nul ] } ", 34, false},
    {"{\"id\":17,\"\x1fp\":\"ping\"}", 21, false},
    {"{\"a\":[1,{\"b\":null}],\"c\":\"\\u00e9\\ud0e9\\ud834\\udd1e\",\"d\":fal"
     "se}", 61, true},
    {"\xe2nu,ll", 6, false},
    {"t\x80r5e", 5, false},
    {" { \"k\" : [ true , falselsDe , null ] } ", 39, false},
    {"1\xed", 2, false},
    {"{\"op\":\"publish\",\"gh\",\"group\":\"room:1\",\"data\":{\"text\"]:\"hi", 57, false},
    {"nu}ll", 5, false},
    {"[1,-2,3.25,4e1,5E-5,-0.0,123456\xf5\x37\x38\x39\x30\x31\x32\x33\x34\x35"
     "\x36\x37\x38\x39\x30\x31\x32\x33\x34\x35\x36\x37\x38\x39\x30]", 57, false},
    {"\xc0", 1, false},
    {"trueru\x09", 7, false},
    {"9", 1, true},
    {" { \"k\" : [ ", 11, false},
    {"nu\xedl", 4, false},
    {"[0.1,[0.1,10,100e-2", 19, false},
    {"truee", 5, false},
    {"[0.1,10,100e-2,{E+2]", 20, false},
    {"[\"\\\"\\\\\\/\\\\/\\\\\\\\/\\b\\f\\n\\r\\t\",\"\xc3\xa9\xe2\x82\xac\xf0"
     "\x9f\x98\x80\"]", 40, true},
    {"\"\"abc\"", 6, false},
    {"[\x01\x30.", 4, false},
    {"[\"\\\"\\\\\\/\\\\\\/\\b\\f\\n\\r\\t\",\"\xc3\xa9\xe2\x82\xac\xf0\x9f"
     "\x98\x80\"]", 36, true},
    {" {", 2, false},
    {"\xf0{u", 3, false},
    {"7}", 2, false},
    {"{\"a{\"a\":[1,{b\":null}],\"c\":\"\\u00e9\\ud834\\udd1e\",\"d\":false}", 57, false},
    {"[1,-2,3.25,4e10,5E-5,-0.0,12345678901245678901234567890]", 56, true},
    {"[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"r\\\",\"\xc3\xa9", 26, false},
    {"{\"a\":[1,{\"b\":null}],\"c\":\"\\u00e9\\ud834audd1e\",\"d\":false}", 55, false},
    {"\"\\u0041\\u0\x0a\x45\x39\\uFFFF\"", 20, false},
    {"{\"id\":17,\"op\"b\"ping}", 20, false},
    {"nullul[", 7, false},
    {"\"abc\"bc\"", 8, false},
    {"{\"a\":[1,{\"b\":null}],\"c\":", 24, false},
    {"[\x7f.1,1,10", 9, false},
    {"5\"id\":17,\"op\"\"pig\"}", 19, false},
    {"[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\",\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"
     "\x80\"]", 33, false},
    {"[\"\\\"\\\\\\/\\b\\fnn\\r\\t\",\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"]", 32, true},
    {"{}}", 3, false},
    {"[1,-2,3.254e10,5E-5,-0.0,1234565678912345678901234567890]", 57, true},
    {":lse", 4, false},
    {"[1,-2,3.25,4e10,5E-5,-0.0,1b23456789012345678901234567890]", 58, false},
    {"[0.1,/0,100-2,1E+2]", 19, false},
    {"[\"\\\"\\\\\\/\\b\\\\n\\r\\t\",\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"]"
     "a", 32, false},
    {"[\"\\\"\\\\\\/\\b", 10, false},
    {"[[[[[]]]],{\"x-\":{\"y\":{\"z\":[]}}}]", 32, true},
    {"{\"id\":17,\"op\":\"ping\"}n\"}", 24, false},
    {"-a-a", 4, false},
    {"nulll", 5, false},
    {"n", 1, false},
    {"{\"op\":\"pubDish\",\"group\":\"room:1\",\"dat", 37, false},
    {"[0.1,10,100e-2n,1E+,1E+2]E+2]", 29, false},
    {"{\"a\":[1,{\"b\":n1ull}],\"c\":\"\\u00e9\\ud834\\udd1e\",\"d\":false}", 56, false},
    {"\"\\u0041\\u0E9\\uFFFF\"", 19, false},
    {"[[[[[]]]],{\"x\":{\"y\":{\"z\":[]}}}:[]}}}]", 37, false},
    {".", 1, false},
    {"0..1,10,100e-2,1E+2]", 20, false},
    {"n:ll", 4, false},
    {"[\x01\x45\x0d", 4, false},
    {"{\"a\":[1,{\"b\":null}],\"ca\":\"\\u00e9\\ud8a34\\dd1e\",\"d\":false}", 56, false},
    {".5e-\xf5\x33", 6, false},
    {"\"]u0041\\u\xf0\x30\x35\x45\x39\\uFFFF\"", 21, false},
    {"[.]", 3, false},
    {"[01[01,t0,100e-2,1E+2]", 22, false},
    {"{}1", 3, false},
    {"6nul", 4, false},
    {"\xc3[\x00[\x00", 5, false},
    {"[1,-t2,3.25,4e10,5E-5,-080,123456789012345678901234567890]", 58, false},
    {"falsesee", 8, false},
    {"{\"id\":17,\x09op\":\"ping\"}", 21, false},
    {"[[[[[]]]],{\"x\"", 14, false},
    {"[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\",\"\xc3\xa9\xe2\x82\xac\xf0+\x98\x80\"]", 32, false},
    {"[[[[]]]],{\"x\":{\"y\":{\"z\":[]}}}]", 30, false},
    {"\"\\u0041\\u00E\\u00E9\\uFFFF\"", 25, false},
    {"truetrruetrue", 13, false},
    {"[[[[[\xf4]]],{\"x\":{y\":", 19, false},
    {"{\"op\":\"publish\",\"group\":\"roo:1m:1\",\"data\":{\"text\":\"hi\",\"n"
     "\":[1,2.5,-3e2]}}", 73, true},
    {"\"\xef\xe2", 3, false},
    {"[\"\\\"\\\\\\/\\b\\f\\n\\r\xeft\",\",\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98"
     "\x80\"]", 34, false},
    {" -0", 3, true},
    {"[[[[[]]]],{\"x\":{[\x7f\":{-\"z\":[]}}}]", 32, false},
    {"{\"id\":17,\"op\":\"8ingg\"", 21, false},
    {"{\"op\":\"publish\",\"group\":\"room:1\",\"data\":{\"text\":\"hi\",\"n\""
     ":[1,2.5,2.5,-3e2]}}", 75, true},
    {"\\0", 2, false},
    {"[\"\\[\"\\\\\\/\\b\\f\\n\\r\\t\",\"[\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"]", 33, false},
    {"[1,-2,3.25,4e10,5E-5,-0.0,1[234568789012345678901234567890]", 59, false},
    {"[1,-2,3.25,4e10,5E-l5,0.0,123456789012345678901234567890]", 57, false},
    {"-s0", 3, false},
    {"[.", 2, false},
    {"{ id\"17,\"op\":\"ping\"}", 20, false},
    {"[0\\.1,10,100e-2,1E+2]", 21, false},
    {"\xc3nu", 3, false},
    {" { \"k\" :\" [ true , false , null ] } ", 36, false},
    {"[1,-2,3.25,4e10,5E-5,-0.0-0.0E,123456789012345678901234567890]", 62, false},
    {"\"\\u\"\\u00:\\u00E9\\uFFFF\"", 22, false},
    {"[0.1,10,100D-2,1E+[]b", 21, false},
    {"[[[[[]]]],{\"x\":{\"y\":{\"z", 23, false},
    {" { \"k\" : [ true , false , anull ] } ", 36, false},
    {"[[[[[]]]],{\"\x0dx:{\"y\":{\"z\"", 24, false},
    {"1.5e5e-3e-3", 11, false},
    {"0.1,10,1", 8, false},
    {"{\"op\":\"\x01ublish\",\"group\":\"room:1\",\"data\":{\"text\":\"hi\",\""
     "n\":[1,2.5,-3e2]}}", 71, false},
    {"{\"op\":\"publish\",\"grou\x80+:\"room:1\",\"data\"1{\"text\":\"hi\",\"n"
     "\":[1,2.5,-3e2]}}", 71, false},
    {"[\"\\\"\\\\t/\\b\\f\\n\\r\\t\"\"\xc3\xa9\xe2", 23, false},
    {"\"\\u041\\u0b0E9\\uF9FFF\"", 21, false},
    {"\xed{\"id\":17,\"op\":\"ping\"}", 22, false},
    {"[\"\\\"\\\\f/\\b\\f\\n\\r\\t\",\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"]", 32, true},
    {"\"\\u0041\\u00E9\\uFF0F\"", 20, true},
    {"{\"op\":\"ublish\",\"group\":\"r", 25, false},
    {"\"[\"\\\"\\\\\\/\\b\\f", 13, false},
    {"\"\\0041\\u00E9\\uFFFF\"FF\"", 22, false},
    {"{}\x09", 3, true},
    {"1.5e.5e-3f", 10, false},
    {"63", 2, true},
    {"-ef", 3, false},
    {"\"\\u0041\\u00E9\\u\x7f\x46", 17, false},
    {"{u", 2, false},
    {" { \"k\" : [true , false , null ] } ", 34, true},
    {"[[[[]]]],{\"x\":{\"y\xed:{\"z\":[]}9}}]", 31, false},
    {"[[[[[]]]],{\"x\":{\"y\":{\"z\":[]}}:[]}}}]", 36, false},
    {"[[[[[]]]],{\xbf\"x\":{{\"y\":{\"z\":[]}}}]", 33, false},
    {"[1,-2,3.25,4e10,5E-5E-5,-0.0,12345678912345678901234567890]", 59, false},
    {" { \"k\" : [ true , false a null ]l ] } ", 38, false},
    {" { \"k : [ true , false , null ] }\x09", 34, false},
    {"{\xf5id\":17,\"\":17,\"op\":\"ping\"ping\"}", 32, false},
    {"[0.10.1", 7, false},
    {"\x00[0.\xed,10,1060e-2,1E+2]", 22, false},
    {"\"\\\xc0\x30\x30\x34\x31\\u00E9\\uF\xef\x46\x46", 19, false},
    {"{\"op\":\"publish\",\"group\":\"room:1\",\"data\":{\"text\":\"hi\",\"n\""
     ":[1,2.5,-3e\xef\x32]}}", 72, false},
    {":rue", 4, false},
    {",", 1, false},
    {"{\"a\":[1,{\"b\"b\":null}],\"c\":\"\\u00e9\\ud834\\udd1e\",\"d\"false}", 56, false},
    {"\"ac\"ac\"", 7, false},
    {"tuee", 4, false},
    {"{\"op\":\"publish\",\"group\":\"room:1\",\":1\",\"data\":{\"text\":\"hi"
     "\",\"n\":[1,2.5,-3e2]}}", 76, false},
    {"{\"a\":[1,{\"b\":null}],\"c\":\"\\u00ee9\\ud834\\udd1e\",\\d\":false}", 56, false},
    {".\"i\xed\":17,\"op\":\"ping\"}", 21, false},
    {"[0.1,b10,100e-2,1E+2]", 21, false},
    {"[0.11,100e-2,1E+2]", 18, true},
    {"[[[[[]].]],{\"x\":{\"y\":{", 22, false},
    {"{\xc0", 2, false},
    {"tu", 2, false},
    {"[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\",\"\xc3\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98"
     "\x80\"]", 34, false},
    {"truet]ue", 8, false},
    {"[1,-2,3.25,4e10,5E-5,-0.0,123456789012\x01\x33\x34\x35\x36\x37\x38\x39"
     "\x30\x31\x32\x33\x34\x35\x36\x37\x38\x39\x30]", 58, false},
    {"nul\"", 4, false},
    {"--", 2, false},
    {"\"\\u001\\u00E9\\uFFFF\"", 19, false},
    {"{\"a\":[1,{\"b\":null}],\"c", 22, false},
    {"1.\x01\x65-t", 6, false},
    {"nu\x09ll", 5, false},
    {"[3", 2, false},
    {"{\"op\":\"publish\",\"group\":\"rooroom:1\",\"data\":{\"text\":\"hi\"\"n"
     "\":[1,2.5,-3e2]}}", 73, false},
    {"{\"op\":\"\":\"publishish\",\"group\":\"room:1\",\"data\":{\"text\":\"hi"
     "\",\"n\":[1,2.5,-3e2]}}", 77, false},
    {"\"\\u004\xf4\x31\\u00E9\\uFFFF\"", 21, false},
    {"8ul{", 4, false},
    {"uu[]", 4, false},
    {"nulu", 4, false},
    {"{\"op\":\"publish\",\"group\":\"room:1\",\"data\":{\"te5xt\":\"hi\",\"n"
     "\":[1,2.5,-3e2]}}", 72, true},
    {"[\"\\\"\\\\\\/\\b\\f\\2n\\r\\t\",\"r\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"", 32, false},
    {"\"ac\"", 4, true},
    {"[1,-2,3.25,4e10,5E-5,-0.0,123456789012345678901234567890567890/]", 64, false},
    {"1\xbf.e5e", 6, false},
    {"\xc0{", 2, false},
    {"\"u004041\\u00E9\\uFFFF9\"", 22, true},
    {"[[[[[]]]],{\"x\":{\"y\":{\"z\":", 25, false},
    {"\xe2\"", 2, false},
    {"{\"a\":[1,{\"b\":null}],\"c\":\"\\u00e9\\ud83\xf4\x34\\udd1e\",\"d\"", 49, false},
    {"truu.", 5, false},
    {"[]\x0a\x32", 4, false},
    {"{\"a\":[1,{\"b\":null}],\"c\":\\u00e9\\ud834\\udd1e\",\"d\":false:}", 55, false},
    {"{\"a\":[1,{\"b\":null}],\"c\":\"\\u00e9\\ud834\\udd1e\",\"ds:fa\xedlse}", 56, false},
    {"\"3bc\"", 5, true},
    {"{\"a\":[1,{\"b\":null}],\"c\":\"\"\\u00e9\\u\xf0\x38\x33\x34\\udd1", 43, false},
    {":[[[[[]]]],{\"x\":{\"y\":{\"z:[]}}}]", 31, false},
    {"-\\/3", 4, false},
    {"[0.1,10,10e-\xf4,1E+22,1E+2]", 25, false},
    {"f00", 3, false},
    {"{,{}", 4, false},
    {"tru\xe2", 4, false},
    {"\xf4\xf0", 2, false},
    {"[[[[[]]]\x00],{\"x\":{\"y\":{\"z\":[]}}}", 31, false},
    {"0\x0d", 2, true},
    {"1\\u0041\\u00E9\\", 14, false},
    {"{\"a\":[1,{\"b\":null}],\"c\":\"\\u00e9\\ud834\\udd1e\",\"d\"false", 53, false},
    {"\"abc\x0d", 5, false},
    {"[]1", 3, false},
    {"{\"op\":\"publish\",\"group\":\"room:1\",\"data\":t\"text\":\"hi\",\"n\""
     ":[1,2.5,-3e2]}}", 71, false},
    {"[[[[[]]]],{\"]],{\"x\":{\"y\":{\"z\":[]}}]", 35, false},
    {"{}/", 3, false},
    {"{\"a\":[1,{\"b\":null}]l}],\"c\":\"\\u00e9ud834\\udd1e\",\"d\":false}", 57, false},
    {"{{\"op\":\"publish,\"group\":\"room:1\",\"data\":{\"text\"", 47, false},
    {"\"\\u0041\\u0lE9\\uFFFF\"", 20, false},
    {"[[[[", 4, false},
    {"{\"id\":7,\"op\":\"p:\"ping\"}g\"}", 26, false},
    {"{\"a\":[1,{\"b\":null}],\"c\":\"\\u00e9\\ud834\\udd1e\"e\",\"d\":false}", 57, false},
    {"{\"a\":[1,{\"{\"b\":null}],\"", 23, false},
    {"[\"\\\"\\\\\\/\\", 9, false},
    {"{\"idr\":17", 9, false},
    {"\",ab.", 5, false},
    {"{\xc0\xc0", 3, false},
    {"\"3abb", 5, false},
    {"{\"a\":[1", 7, false},
    {"{nll", 4, false},
    {"1.5ee-3", 7, false},
    {"{\"p\":\"publish\",\"g5oup\":\"room:1\",\"data\":{\"text\":\"hi\",\"n\":"
     "[1,2.5,-3", 65, false},
    {"[[[[[]]]],{\"x\":{\"y\":{\"z\"{\"z\":[]}}}]", 35, false},
    {"{t", 2, false},
    {"[0.1,10,100e-2,E+2]", 19, false},
    {"[1,-2,3.25,4e10,5E-5,-0.0123456789012345678901234567890]", 56, true},
    {"[\"\\\"\\\\\\/\\b\\f\\n\\lr\\t\",\"\xc3\xa9\xe2\x82\xac\xf0", 28, false},
    {"[\\\"\\\\\\/\\/\\", 10, false},
    {"falsee", 6, false},
    {"{\"\"d\":17,\"op\":\"pin4-g\"}", 23, false},
    {" { \"k\" :\xff [ t", 13, false},
    {"{\"op\":\"publish\",\"group\":\"room:1\",\"data\":{\"text\":\"hi\",\"n\""
     ":[1,25,-3e2]}}", 70, true},
    {"{\"a\":[1,{\"b\":null],\"c\":\"\\u00e9\\ud834\\ud\xf5\x31\x65\",\"d\":fa"
     "lse}", 54, false},
    {"\"\\u0041\\u00E9uFFFF\"", 19, true},
    {"{\"id\":17,\"op\":\"pingD\"}", 22, true},
    {"{\"a\":[1,{\"b\":null}],\"c\":\"\\u00e9\\ud834\\\x7fudd1e\",\"d\":false}", 56, false},
    {"[[[[[]]]],{\"x\x0a:{\"y\":{\"z\":[]}}}]", 31, false},
    {" { \"k\" : [ true , false , ", 26, false},
    {"ue", 2, false},
    {"4", 1, true},
    {"{\"a\":[1,{\"b\":null],\"c\":\"\\u00e9\\ud34\\d34\\udd1e\",\"d\":false}", 57, false},
    {"[\"\\\"\\\\\\/\\b\\", 11, false},
    {"[[[[[]]]],{\"x:{\"\"y\":{\"", 22, false},
    {"[[[[[]l]],{\"x\":{\"y\":{\"z\":[]u}}}]\x01", 33, false},
    {"[1,-2,3.25,4e10,5E-5,-0.0,1234567895678901234567890123467890]", 61, true},
    {"{\"a\":[1,{\"b\":null}],\"c\":\"\\u0e9\\ud83\\ud834\\udd1e\",\"d\":false"
     "}", 59, false},
    {"Efalse", 6, false},
    {"\"\\u0041", 7, false},
    {"[0.[1,10,100e-2,1E+5]", 21, false},
    {"\xf5\x01}", 3, false},
    {"flbse", 5, false},
    {"{\"op\":\"publish\",group\":\"room:1\",\"data\":{\"text\":\"hia,\"n\"2[1"
     ",2.5,-3e2]}}", 70, false},
    {"-\xf0", 2, false},
    {"[1,-2,3.25,4e10,5E-5,-0.09,1234567890", 37, false},
    {"[0.1,10,100e-2,1E+26", 20, false},
    {"{\"op\":\"publis\x0a\",\"group\":\"room:1\",\"data\":{ta\":{\"text\":\"h"
     "i\",\"n\":[102.5,-3e2]}}", 76, false},
    {"[[[[[]\x0d", 7, false},
    {"[0.1,10,100e-2-2", 16, false},
    {"{\"fid\":17,\"\xf4op\":\"ping\"}", 23, false},
    {"-\"0-\"0", 6, false},
    {"[0.1,\x09\x31\x30\xef\x31\x30\x30\x65\x80\x32,1E+2]", 21, false},
    {"\"\xf4\x62\xc0", 4, false},
    {"\xef\x61\x62\x63\"u", 6, false},
    {"[[[[]", 5, false},
    {"{\"a\"\x80:[1,{\"b\":null}],\"c\":\"\\u00e9\\ud834\\ud1e\",", 45, false},
    {"{\"op\":\"publish\",\"group\":\"room:1\",\"d\"data\":{\"text\":\"hi\",\""
     "n\":[1,2.5,-e2]}}", 72, false},
    {"1.-b5e-3", 8, false},
    {"\"abc\"abcabc", 11, false},
    {"[\"\\\"\\\\/\\b\\f\\n\\r\\t\",\"\xc3\xa9\xe2\x82\xa9\xe2\x82\xac\xf0\x9f"
     "\x98\x80\"", 33, false},
    {"truae", 5, false},
    {"[1,-2,3.25,4e10,5E-5,-0.0,123456789012[345678901234567890]", 58, false},
    {" { \"k\" : [ tfrue , false , null ] } ", 36, false},
    {"{\"op\":\"publish\",\"group\":\"room:1\",\"data\":{\"text\":.\"hi\",\"n"
     "\":[1,2.5,-3e2]}}", 72, false},
    {"[f\"\\\"\\\\\\/\\b\\f\\n\\r\\t\",\"\xc3\xa9\xe2\x36\x82\xac\xf0\x9f\x98"
     "\x80\"]", 34, false},
    {"[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\",\"\xc3\xa9\xf0\xe2\x82\xac\xf0\x9f\x98"
     "\x80\"]\x80\"]", 36, false},
    {"\"\\u0041\\u00E9\\u5FFbF:F\"", 23, true},
    {"{\"a\":[1,{\"b\":null],\"c\":\"\\u00e9\\ud834\\udd1e\",\"d\":1false}se}", 58, false},
    {"nul1l", 5, false},
    {"[0.1,1,100e-2,1E+2]", 19, true},
    {"[[[[[]]]],:\",:\"x\":{\"y\":", 23, false},
    {"\"\\u0041\\", 8, false},
    {"{\"op\":\"publish\",\"group\":\"room:1\",\"data\":{\"text\":\"h\",\"n\":"
     "[1,2.5,-3e2]}}", 70, true},
    {"[1,-2,3.25,4e10,5E-5E-0.0,12345678901234567890123890123454567890]", 65, false},
    {"\x7f\x31.5e\x7f\x31.5e", 10, false},
    {"falsefalse", 10, false},
    {"\"ab\xf4\x63\"", 6, false},
    {"[0.,10,100e-2,1E+", 17, false},
    {"5", 1, true},
    {"[1,-2,3.25,4e10,5E-5,-0.0,12345678", 34, false},
    {"tru]", 4, false},
    {"{\"a\":[1,:[1,{\"b\":null}],\"c\":\"\\u00e9\\ud834\\udd1e\"n,\"d\":false"
     "}", 60, false},
    {"[1,-2,3.25,4e125,4e10,5E-5,-0.0,123456789012345678901234567890]", 63, true},
    {"{\"id\":17,\"op\":\"pig\"}", 20, true},
    {"n8ull", 5, false},
    {"nbullal", 7, false},
    {"141.5e-38", 9, true},
    {"rtae", 4, false},
    {"{\"a\":[1,{\"b\":null}],\"],\"c\":\"\\u00e9\\ud834\\udd1e\",\"d\":false}", 58, false},
    {"[1,-2,3.25,4e10,5E-5,-0.0,123456789012345678901", 47, false},
    {"{}\"{E}", 6, false},
    {" { \"k\" : [ true ue ", 19, false},
    {"[\"/\"\\\\\\f\\b\\f\\n\\D\\t\",\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"]", 32, false},
    {"]0", 2, false},
    {" { \"k\" : [ true , false , null l  } ", 36, false},
    {"-0-", 3, false},
    {"[1,-2,3.25,4e10,5-5,-0.0,123456789012345678901234567890]", 56, false},
    {"{\"a\":[1,{\"b\":\x0aull}],\"c\":\"\\u00e9\\ud,834\\udd1e\",\"d\":false}", 56, false},
    {"{\"id\":1717,\"op\"\"ping\"9", 22, false},
    {"{\"op:\"publish\",\"group\":\"room:1\",\"d\"ata\":{\"text\":\"hi\",\"n\""
     ":[1,2.5,-3e2]}}", 71, false},
    {"\"u0041\\u00E\x09\\uFFFF]", 19, false},
    {"[\"\\\"}\\\\\\/\\b\\f\\n\\r\\tb\",\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"
     "\"", 33, false},
    {"[[[[[]]]],{\"x\":{\"y4:{\"z\":[]}}}]", 31, false},
    {"[\"\\\\\"\\\\\\", 8, false},
    {"\x1f\"", 2, false},
    {"\"aabc", 5, false},
    {" { \"k\" : [ true , false ,\" ull ] } ", 35, false},
    {"\"\\u0041\\u00E9\\uF", 16, false},
    {"nul4", 4, false},
    {"[[[[[]]]],\x00\"x\":{\"\":{\"z\":[]}}}}]", 31, false},
    {"\"\\u041\\u00u00E9\\uFF", 19, false},
    {"[\"\\\"\\\\\\/\\b\\ff\\n\\r\\t\",\"\x09\xc3\xa9\xe2\x82\xac\xf0\x9f\xe2"
     "\x82\xac\xf0\x9f\x98\x80\"]", 39, false},
    {"[0.1,10,100e-2,1E+2", 19, false},
    {"tru+e", 5, false},
    {"[1,-2,3.25,4e.25,4e", 19, false},
    {"[,", 2, false},
    {"{\"id\":17,\"bop\":\"+ing\"}", 22, true},
    {"{\"a\":[1,{\"b\":{\"b\":null}],\"c", 27, false},
    {"truE", 4, false},
    {" { \"k\" : [ true , false ,nu", 27, false},
    {"{\"op\":\"publish\",\"group\":\"room:1\",\"data\":{\"text\":hi\",\"n\":["
     "1,2.5,-3e2]}}", 70, false},
    {"tEtrue", 6, false},
    {"u5", 2, false},
};
/* END GENERATED */

Test(json, agrees_with_strict_python_json_on_generated_inputs)
{
    for (size_t i = 0; i < WSD_ARRAY_LEN(diff_cases); i++) {
        const struct diff_case *c = &diff_cases[i];
        int rc = validate_guarded(c->text, c->len);
        cr_assert_eq(rc == 0, c->valid, "case %zu (%zu bytes): python says %s", i, c->len,
                     c->valid ? "valid" : "invalid");
    }
}

static void nest(char *out, int depth, bool object)
{
    size_t o = 0;
    for (int i = 0; i < depth; i++) {
        if (object) {
            memcpy(out + o, "{\"k\":", 5);
            o += 5;
        } else {
            out[o++] = '[';
        }
    }
    out[o++] = '1';
    for (int i = 0; i < depth; i++)
        out[o++] = object ? '}' : ']';
    out[o] = '\0';
}

Test(json, limits_nesting_to_64_levels)
{
    char doc[64 * 5 + 80];
    nest(doc, JSON_MAX_DEPTH, false);
    cr_assert_eq(validate_guarded(doc, strlen(doc)), 0);
    nest(doc, JSON_MAX_DEPTH + 1, false);
    cr_assert_eq(validate_guarded(doc, strlen(doc)), WSD_EINVAL);
    nest(doc, JSON_MAX_DEPTH, true);
    cr_assert_eq(validate_guarded(doc, strlen(doc)), 0);
    nest(doc, JSON_MAX_DEPTH + 1, true);
    cr_assert_eq(validate_guarded(doc, strlen(doc)), WSD_EINVAL);
}

Test(json, survives_very_deep_input_without_recursing_past_the_limit)
{
    size_t n = 1000000;
    char *doc = malloc(n);
    cr_assert(doc != NULL);
    memset(doc, '[', n);
    cr_assert_eq(json_validate((const uint8_t *)doc, n, NULL), WSD_EINVAL);
    free(doc);
}

static struct json_value scan_one(const char *text)
{
    struct json_value v;
    cr_assert_eq(json_validate((const uint8_t *)text, strlen(text), &v), 0, "%s", text);
    return v;
}

Test(json, reports_value_spans_and_types)
{
    static const char doc[] = " {\"a\" : [1, 2] ,\"b\":\"x\\ny\", \"c\":-3.5e2 } ";
    const uint8_t *p = (const uint8_t *)doc;
    struct json_value root, key, val;
    cr_assert_eq(json_validate(p, strlen(doc), &root), 0);
    cr_assert_eq(root.type, JSON_OBJECT);
    cr_assert_eq(root.p, p + 1);
    cr_assert_eq(root.len, strlen(doc) - 2);
    struct json_iter it;
    json_iter_init(&it, p, strlen(doc), &root, 1);
    cr_assert_eq(json_iter_next(&it, &key, &val), 1);
    cr_assert(json_str_equal_lit(key.p + 1, key.len - 2, false, "a", 1));
    cr_assert_eq(val.type, JSON_ARRAY);
    cr_assert(val.len == 6 && memcmp(val.p, "[1, 2]", 6) == 0);
    cr_assert_eq(json_iter_next(&it, &key, &val), 1);
    cr_assert_eq(val.type, JSON_STRING);
    cr_assert(val.len == 6 && memcmp(val.p, "\"x\\ny\"", 6) == 0);
    cr_assert(val.flags & JSON_F_ESCAPED);
    cr_assert_eq(val.str_len, 3);
    cr_assert_eq(json_iter_next(&it, &key, &val), 1);
    cr_assert_eq(val.type, JSON_NUMBER);
    cr_assert(val.len == 6 && memcmp(val.p, "-3.5e2", 6) == 0);
    cr_assert_eq(val.flags & (JSON_F_INT | JSON_F_NEG | JSON_F_BIG), JSON_F_NEG | JSON_F_BIG);
    cr_assert_eq(json_iter_next(&it, &key, &val), 0);
    cr_assert_eq(json_iter_next(&it, &key, &val), 0);
}

Test(json, iterates_arrays_without_keys)
{
    static const char doc[] = "[true, null, \"s\"]";
    struct json_value root = scan_one(doc), val;
    struct json_iter it;
    json_iter_init(&it, (const uint8_t *)doc, strlen(doc), &root, 1);
    enum json_type want[] = {JSON_TRUE, JSON_NULL, JSON_STRING};
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(json_iter_next(&it, NULL, &val), 1);
        cr_assert_eq(val.type, want[i]);
    }
    cr_assert_eq(json_iter_next(&it, NULL, &val), 0);
}

Test(json, propagates_the_big_number_flag_to_containers)
{
    cr_assert(scan_one("[1,[2,{\"a\":3e5}]]").flags & JSON_F_BIG);
    cr_assert(!(scan_one("[1,[2,{\"a\":3.5}]]").flags & JSON_F_BIG));
}

Test(json, parses_integers_at_the_64_bit_bounds)
{
    uint64_t u;
    int64_t i;
    struct json_value v = scan_one("18446744073709551615");
    cr_assert_eq(json_number_u64(&v, &u), 0);
    cr_assert_eq(u, UINT64_MAX);
    cr_assert_eq(json_number_i64(&v, &i), WSD_EINVAL);
    v = scan_one("18446744073709551616");
    cr_assert_eq(json_number_u64(&v, &u), WSD_EINVAL);
    v = scan_one("9223372036854775807");
    cr_assert_eq(json_number_i64(&v, &i), 0);
    cr_assert_eq(i, INT64_MAX);
    v = scan_one("-9223372036854775808");
    cr_assert_eq(json_number_i64(&v, &i), 0);
    cr_assert_eq(i, INT64_MIN);
    cr_assert_eq(json_number_u64(&v, &u), WSD_EINVAL);
    v = scan_one("-9223372036854775809");
    cr_assert_eq(json_number_i64(&v, &i), WSD_EINVAL);
    v = scan_one("-0");
    cr_assert_eq(json_number_u64(&v, &u), 0);
    cr_assert_eq(u, 0);
    v = scan_one("1.0");
    cr_assert_eq(json_number_u64(&v, &u), WSD_EINVAL);
    cr_assert_eq(json_number_i64(&v, &i), WSD_EINVAL);
    v = scan_one("1e2");
    cr_assert_eq(json_number_u64(&v, &u), WSD_EINVAL);
    v = scan_one("\"1\"");
    cr_assert_eq(json_number_u64(&v, &u), WSD_EINVAL);
}

static double to_double(const char *text)
{
    double d;
    struct json_value v = scan_one(text);
    cr_assert_eq(json_number_double(&v, &d), 0);
    return d;
}

Test(json, converts_numbers_to_the_nearest_double)
{
    cr_assert_eq(to_double("0"), 0.0);
    cr_assert(signbit(to_double("-0.0")));
    cr_assert_eq(to_double("1.5"), 1.5);
    cr_assert_eq(to_double("-2.5e-3"), -2.5e-3);
    cr_assert_eq(to_double("0.1"), 0.1);
    cr_assert_eq(to_double("123456789012345678901234567890"), 123456789012345678901234567890.0);
    cr_assert_eq(to_double("0.000000000000000000000000000001"), 1e-30);
    cr_assert_eq(to_double("1.7976931348623157e308"), 1.7976931348623157e308);
    cr_assert_eq(to_double("2.2250738585072014E-308"), 2.2250738585072014e-308);
    cr_assert(isinf(to_double("1e309")));
    cr_assert(isinf(to_double("-1e99999999999999999999")));
    cr_assert_eq(to_double("1e-99999999999999999999"), 0.0);
    cr_assert_eq(to_double("0e99999"), 0.0);
    cr_assert_eq(to_double("100e-2"), 1.0);
}

static void check_unescape(const char *json, const char *want, size_t want_len)
{
    uint8_t out[64];
    struct json_value v = scan_one(json);
    cr_assert_eq(v.type, JSON_STRING);
    cr_assert_eq(v.str_len, want_len, "%s", json);
    long n = json_string_decode(&v, out, sizeof(out));
    cr_assert_eq(n, (long)want_len, "%s", json);
    cr_assert(memcmp(out, want, want_len) == 0, "%s", json);
}

Test(json, unescapes_strings_to_utf8)
{
    check_unescape("\"plain\"", S("plain"));
    check_unescape("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", S("\"\\/\b\f\n\r\t"));
    check_unescape("\"\\u0041\\u00e9\\u20AC\"", S("A\xc3\xa9\xe2\x82\xac"));
    check_unescape("\"\\ud83d\\ude00!\"", S("\xf0\x9f\x98\x80!"));
    check_unescape("\"a\\u0000b\"", S("a\0b"));
    check_unescape("\"\xc3\xa9\\n\"", S("\xc3\xa9\n"));
}

Test(json, unescape_reports_too_big_and_works_in_place)
{
    char doc[] = "\"ab\\u00e9\\ud83d\\ude00cd\"";
    struct json_value v = scan_one(doc);
    uint8_t small[4];
    cr_assert_eq(json_string_decode(&v, small, sizeof(small)), WSD_ETOOBIG);
    uint8_t *raw = (uint8_t *)doc + 1;
    long n = json_unescape(raw, v.len - 2, raw, v.len - 2);
    cr_assert_eq(n, 10);
    cr_assert(memcmp(raw, "ab\xc3\xa9\xf0\x9f\x98\x80" "cd", 10) == 0);
}

Test(json, compares_strings_after_unescaping)
{
    cr_assert(json_str_equal_lit((const uint8_t *)"\\u006fp", 7, true, "op", 2));
    cr_assert(!json_str_equal_lit((const uint8_t *)"\\u006fp", 7, true, "o", 1));
    cr_assert(!json_str_equal_lit((const uint8_t *)"\\u006fp", 7, true, "opx", 3));
    cr_assert(json_str_equal_lit((const uint8_t *)"op", 2, false, "op", 2));
    cr_assert(!json_str_equal_lit((const uint8_t *)"\\u006fp", 7, false, "op", 2));
    cr_assert(json_str_equal((const uint8_t *)"a\\u00e9", 7, (const uint8_t *)"a\xc3\xa9", 3));
    cr_assert(!json_str_equal((const uint8_t *)"a\\u00e9", 7, (const uint8_t *)"a\xc3", 2));
    cr_assert(json_str_equal((const uint8_t *)"", 0, (const uint8_t *)"", 0));
}

Test(json, validates_utf8_by_rfc3629)
{
    cr_assert(json_utf8_is_valid((const uint8_t *)"\xf4\x8f\xbf\xbf", 4));
    cr_assert(!json_utf8_is_valid((const uint8_t *)"\xf4\x90\x80\x80", 4));
    cr_assert(!json_utf8_is_valid((const uint8_t *)"\xed\xa0\x80", 3));
    cr_assert(!json_utf8_is_valid((const uint8_t *)"\xc0\x80", 2));
    cr_assert(!json_utf8_is_valid((const uint8_t *)"\xe2\x82", 2));
    cr_assert(json_utf8_is_valid((const uint8_t *)"", 0));
}

static char *buf_text(struct buf *b)
{
    cr_assert_eq(buf_append(b, "", 1), 0);
    return (char *)b->data;
}

Test(json, writes_strings_escaped_and_rejects_bad_utf8)
{
    struct buf b;
    buf_init(&b);
    cr_assert_eq(json_write_string(&b, "a\"b\\c\n\x01\x7f\xc3\xa9", 10), 0);
    cr_assert_str_eq(buf_text(&b), "\"a\\\"b\\\\c\\n\\u0001\x7f\xc3\xa9\"");
    b.len = 0;
    cr_assert_eq(json_write_string(&b, "\xff", 1), WSD_EUTF8);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(json_write_string(&b, "", 0), 0);
    cr_assert_str_eq(buf_text(&b), "\"\"");
    buf_fini(&b);
}

Test(json, written_strings_scan_back_to_the_same_bytes)
{
    struct buf b;
    buf_init(&b);
    uint8_t in[128], out[256];
    size_t n = 0;
    for (unsigned c = 0; c < 128; c++)
        in[n++] = (uint8_t)c;
    cr_assert_eq(json_write_string(&b, in, n), 0);
    struct json_value v;
    cr_assert_eq(json_validate(b.data, b.len, &v), 0);
    cr_assert_eq(v.str_len, n);
    cr_assert_eq(json_string_decode(&v, out, sizeof(out)), (long)n);
    cr_assert(memcmp(in, out, n) == 0);
    buf_fini(&b);
}

static void check_double(double d, const char *want)
{
    struct buf b;
    buf_init(&b);
    cr_assert_eq(json_write_double(&b, d), 0);
    cr_assert_str_eq(buf_text(&b), want);
    b.len--;
    cr_assert_eq(json_validate(b.data, b.len, NULL), 0);
    buf_fini(&b);
}

Test(json, writes_doubles_in_the_shortest_form_that_reads_back)
{
    check_double(0.1, "0.1");
    check_double(1.0, "1.0");
    check_double(-0.0, "-0.0");
    check_double(1e300, "1e+300");
    check_double(0.1 + 0.2, "0.30000000000000004");
    check_double(123456789.0, "123456789.0");
    check_double(5e-324, "4.94065645841247e-324");
    struct buf b;
    buf_init(&b);
    cr_assert_eq(json_write_double(&b, NAN), WSD_EINVAL);
    cr_assert_eq(json_write_double(&b, INFINITY), WSD_EINVAL);
    cr_assert_eq(json_write_float(&b, 0.1f), 0);
    cr_assert_str_eq(buf_text(&b), "0.1");
    buf_fini(&b);
}
