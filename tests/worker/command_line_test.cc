#include "worker/command_line.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

namespace tq {
namespace {

using Words = std::vector<std::string>;

Words Split(const std::string& s) {
  auto r = SplitCommand(s);
  INFO(r.status().message());
  REQUIRE(r.ok());
  return r.value();
}

TEST_CASE("SplitCommandSeparatesWordsOnUnquotedBlanks", "[command_line]") {
  CHECK(Split("echo  a\tb\nc ") == Words{"echo", "a", "b", "c"});
}

TEST_CASE("SingleQuotesKeepEverythingLiteral", "[command_line]") {
  CHECK(Split(R"(echo 'a b' 'x\"y\n' '$HOME $(id) `id` *')") ==
        Words{"echo", "a b", R"(x\"y\n)", "$HOME $(id) `id` *"});
}

TEST_CASE("DoubleQuotesEscapeOnlyDollarBacktickQuoteBackslash",
          "[command_line]") {
  CHECK(Split(R"(echo "a \"b\" \\ \$ \` \n c")") ==
        Words{"echo", R"(a "b" \ $ ` \n c)"});
}

TEST_CASE("BackslashOutsideQuotesEscapesTheNextCharacter", "[command_line]") {
  CHECK(Split(R"(echo a\ b \'c\' \"d \\e \;)") ==
        Words{"echo", "a b", "'c'", "\"d", "\\e", ";"});
}

TEST_CASE("BackslashNewlineIsALineContinuation", "[command_line]") {
  CHECK(Split("echo a\\\nb") == Words{"echo", "ab"});
  CHECK(Split("echo \"a\\\nb\"") == Words{"echo", "ab"});
}

TEST_CASE("AdjacentQuotedPiecesJoinIntoOneWord", "[command_line]") {
  CHECK(Split(R"(cmd --opt='a b'"c d"e)") == Words{"cmd", "--opt=a bc de"});
}

TEST_CASE("EmptyQuotesMakeAnEmptyWord", "[command_line]") {
  CHECK(Split("cmd '' \"\" x") == Words{"cmd", "", "", "x"});
}

TEST_CASE("NoExpansionOfVariablesGlobsOrSubstitutions", "[command_line]") {
  CHECK(Split("echo $HOME * ~ `id` {a,b}") ==
        Words{"echo", "$HOME", "*", "~", "`id`", "{a,b}"});
}

TEST_CASE("UnterminatedSingleQuoteIsAnError", "[command_line]") {
  auto r = SplitCommand("echo 'abc");
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Status::Code::kInvalidArgument);
  CHECK(r.status().message().find("unterminated single quote") !=
        std::string::npos);
}

TEST_CASE("UnterminatedDoubleQuoteIsAnError", "[command_line]") {
  auto r = SplitCommand("echo \"abc\\\"");
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message().find("unterminated double quote") !=
        std::string::npos);
}

TEST_CASE("UnquotedShellOperatorsAreRefused", "[command_line]") {
  for (const char* cmd :
       {"a | b", "a; b", "a && b", "a > f", "a < f", "(a)", "a &"}) {
    INFO(cmd);
    CHECK_FALSE(SplitCommand(cmd).ok());
  }
  CHECK(Split("a '|' \";\" \\&") == Words{"a", "|", ";", "&"});
}

TEST_CASE("EmptyCommandIsAnError", "[command_line]") {
  CHECK_FALSE(SplitCommand("").ok());
  CHECK_FALSE(SplitCommand("   \t").ok());
}

TEST_CASE("UrlSubstitutionKeepsOneArgvElementWhateverTheUrlHolds",
          "[command_line]") {
  auto t = CommandTemplate::Parse("fetch --url {url} -v");
  REQUIRE(t.ok());
  CHECK(t->uses_url());
  const std::string nasty = "http://x/a b;rm -rf /'\"$(id)`id`|&>\n{url}\\ ";
  CHECK(t->Expand(nasty) == Words{"fetch", "--url", nasty, "-v"});
}

TEST_CASE("UrlPlaceholderInsideAWordAndRepeated", "[command_line]") {
  auto t = CommandTemplate::Parse("cmd 'u={url}&again={url}' \"{url}\"");
  REQUIRE(t.ok());
  CHECK(
      t->Expand("http://h/p?q=1") ==
      Words{"cmd", "u=http://h/p?q=1&again=http://h/p?q=1", "http://h/p?q=1"});
}

TEST_CASE("TemplateWithoutPlaceholderSaysSo", "[command_line]") {
  auto t = CommandTemplate::Parse("true");
  REQUIRE(t.ok());
  CHECK_FALSE(t->uses_url());
  CHECK(t->Expand("http://x/") == Words{"true"});
}

TEST_CASE("ExpandIntoReusesTheVector", "[command_line]") {
  auto t = CommandTemplate::Parse("a {url}");
  REQUIRE(t.ok());
  Words argv = {"stale", "stale", "stale"};
  t->ExpandInto("u", &argv);
  CHECK(argv == Words{"a", "u"});
}

}  // namespace
}  // namespace tq
