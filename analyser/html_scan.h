// What a page's HTML shows without running it, parsed with gumbo (never with
// regular expressions over HTML).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tq {

struct HtmlScript {
  std::string src;   // as written; empty for inline scripts
  std::string code;  // inline code
};

struct HtmlFrame {
  std::string tag;  // iframe or frame
  std::string src;
  bool hidden = false;
  std::string hidden_why;  // "zero size", "display:none", ...
  std::string snippet;     // the element's attributes, shortened
};

struct HtmlForm {
  std::string action;
  std::string method;  // upper case, GET by default
  bool has_password = false;
};

struct HtmlEmbed {
  std::string tag;  // object, embed or applet
  std::string src;  // data/src/code/archive
  std::string type;
};

struct HtmlFindings {
  std::vector<HtmlScript> scripts;
  std::vector<HtmlFrame> frames;
  std::vector<std::string> meta_refresh;  // target URLs as written
  std::vector<HtmlForm> forms;
  std::vector<HtmlEmbed> embeds;
  std::vector<std::string> download_links;  // hrefs to executables/archives
  std::string base_href;
};

HtmlFindings ScanHtml(std::string_view html);

// Why a frame with these attributes is hidden, or "" if it is not: zero
// size, display:none, visibility:hidden, or far off-screen positioning.
std::string HiddenReason(std::string_view width, std::string_view height,
                         std::string_view style);

// True if the path of `href` ends with an executable or archive extension.
bool LooksLikeDownload(std::string_view href);

}  // namespace tq
