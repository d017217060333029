#include "analyser/html_scan.h"

#include <gumbo.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <memory>

namespace tq {
namespace {

constexpr size_t kMaxSnippet = 300;
// Gumbo recurses by element; a depth cap keeps hostile nesting bounded.
constexpr int kMaxDepth = 512;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

std::string Attr(const GumboElement& el, const char* name) {
  const GumboAttribute* a = gumbo_get_attribute(&el.attributes, name);
  return a ? Trim(a->value) : std::string();
}

std::string TextOf(const GumboNode* node) {
  std::string out;
  const GumboVector& children = node->v.element.children;
  for (unsigned i = 0; i < children.length; ++i) {
    const auto* c = static_cast<const GumboNode*>(children.data[i]);
    if (c->type == GUMBO_NODE_TEXT || c->type == GUMBO_NODE_CDATA ||
        c->type == GUMBO_NODE_WHITESPACE) {
      out += c->v.text.text;
    }
  }
  return out;
}

std::string AttrSnippet(const GumboElement& el, std::string_view tag) {
  std::string s = "<" + std::string(tag);
  for (unsigned i = 0; i < el.attributes.length; ++i) {
    const auto* a = static_cast<const GumboAttribute*>(el.attributes.data[i]);
    s += " ";
    s += a->name;
    s += "=\"";
    s += a->value;
    s += "\"";
  }
  s += ">";
  if (s.size() > kMaxSnippet) s = s.substr(0, kMaxSnippet) + "...";
  return s;
}

// Parses a CSS length such as "0", "0px", "-999px"; false if not a number.
bool CssNumber(std::string_view v, double* out) {
  const std::string s(v);
  char* end = nullptr;
  const double d = std::strtod(s.c_str(), &end);
  if (end == s.c_str()) return false;
  *out = d;
  return true;
}

// Declarations of an inline style, lower-cased and without blanks.
std::vector<std::pair<std::string, std::string>> StyleDecls(
    std::string_view style) {
  std::vector<std::pair<std::string, std::string>> out;
  std::string s;
  for (char c : style) {
    if (!std::isspace(static_cast<unsigned char>(c))) {
      s.push_back(
          static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
  }
  size_t pos = 0;
  while (pos < s.size()) {
    size_t semi = s.find(';', pos);
    if (semi == std::string::npos) semi = s.size();
    const std::string decl = s.substr(pos, semi - pos);
    const size_t colon = decl.find(':');
    if (colon != std::string::npos) {
      std::string value = decl.substr(colon + 1);
      const size_t bang = value.find("!important");
      if (bang != std::string::npos) value.erase(bang);
      out.emplace_back(decl.substr(0, colon), value);
    }
    pos = semi + 1;
  }
  return out;
}

class Scanner {
 public:
  explicit Scanner(HtmlFindings* out) : out_(out) {}

  void Visit(const GumboNode* node, int depth) {
    if (node->type != GUMBO_NODE_ELEMENT || depth > kMaxDepth) return;
    const GumboElement& el = node->v.element;
    OnElement(node, el);
    for (unsigned i = 0; i < el.children.length; ++i) {
      Visit(static_cast<const GumboNode*>(el.children.data[i]), depth + 1);
    }
    if (el.tag == GUMBO_TAG_FORM) form_stack_.pop_back();
  }

 private:
  void OnElement(const GumboNode* node, const GumboElement& el) {
    const std::string tag = el.tag == GUMBO_TAG_UNKNOWN
                                ? Lower(gumbo_normalized_tagname(el.tag))
                                : gumbo_normalized_tagname(el.tag);
    switch (el.tag) {
      case GUMBO_TAG_SCRIPT: {
        HtmlScript s;
        s.src = Attr(el, "src");
        if (s.src.empty()) s.code = TextOf(node);
        out_->scripts.push_back(std::move(s));
        break;
      }
      case GUMBO_TAG_IFRAME:
      case GUMBO_TAG_FRAME: {
        HtmlFrame f;
        f.tag = tag;
        f.src = Attr(el, "src");
        f.hidden_why = HiddenReason(Attr(el, "width"), Attr(el, "height"),
                                    Attr(el, "style"));
        f.hidden = !f.hidden_why.empty();
        f.snippet = AttrSnippet(el, tag);
        out_->frames.push_back(std::move(f));
        break;
      }
      case GUMBO_TAG_META: {
        if (Lower(Attr(el, "http-equiv")) != "refresh") break;
        // content="5; url=http://..." (the url= part is optional in case)
        const std::string content = Attr(el, "content");
        const std::string lower = Lower(content);
        size_t u = lower.find("url");
        if (u == std::string::npos) break;
        size_t eq = lower.find('=', u);
        if (eq == std::string::npos) break;
        std::string target = Trim(content.substr(eq + 1));
        if (target.size() >= 2 &&
            (target.front() == '\'' || target.front() == '"')) {
          const char q = target.front();
          target = target.substr(1, target.find(q, 1) == std::string::npos
                                        ? std::string::npos
                                        : target.find(q, 1) - 1);
        }
        if (!target.empty()) out_->meta_refresh.push_back(target);
        break;
      }
      case GUMBO_TAG_FORM: {
        HtmlForm f;
        f.action = Attr(el, "action");
        std::string m = Attr(el, "method");
        for (char& c : m)
          c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        f.method = m.empty() ? "GET" : m;
        out_->forms.push_back(std::move(f));
        form_stack_.push_back(out_->forms.size() - 1);
        break;
      }
      case GUMBO_TAG_INPUT: {
        if (Lower(Attr(el, "type")) == "password" && !form_stack_.empty()) {
          out_->forms[form_stack_.back()].has_password = true;
        }
        break;
      }
      case GUMBO_TAG_OBJECT:
      case GUMBO_TAG_EMBED:
      case GUMBO_TAG_APPLET: {
        HtmlEmbed e;
        e.tag = tag;
        for (const char* a : {"data", "src", "code", "archive", "classid"}) {
          e.src = Attr(el, a);
          if (!e.src.empty()) break;
        }
        e.type = Attr(el, "type");
        out_->embeds.push_back(std::move(e));
        break;
      }
      case GUMBO_TAG_A:
      case GUMBO_TAG_AREA: {
        const std::string href = Attr(el, "href");
        if (LooksLikeDownload(href)) out_->download_links.push_back(href);
        break;
      }
      case GUMBO_TAG_BASE: {
        if (out_->base_href.empty()) out_->base_href = Attr(el, "href");
        break;
      }
      default:
        break;
    }
  }

  HtmlFindings* out_;
  std::vector<size_t> form_stack_;
};

}  // namespace

std::string HiddenReason(std::string_view width, std::string_view height,
                         std::string_view style) {
  double w = 1, h = 1;
  if ((CssNumber(width, &w) && w <= 0) || (CssNumber(height, &h) && h <= 0)) {
    return "zero size";
  }
  bool positioned = false;
  std::string off_screen;
  for (const auto& [prop, value] : StyleDecls(style)) {
    double d = 0;
    if (prop == "display" && value == "none") return "display:none";
    if (prop == "visibility" && value == "hidden") return "visibility:hidden";
    if ((prop == "width" || prop == "height") && CssNumber(value, &d) &&
        d <= 0) {
      return "zero size";
    }
    if (prop == "position" && (value == "absolute" || value == "fixed")) {
      positioned = true;
    }
    if ((prop == "left" || prop == "top") && CssNumber(value, &d) &&
        d <= -100) {
      off_screen = "off-screen (" + prop + ":" + value + ")";
    }
  }
  if (positioned && !off_screen.empty()) return off_screen;
  return "";
}

bool LooksLikeDownload(std::string_view href) {
  static constexpr std::array<std::string_view, 16> kExtensions = {
      ".exe", ".scr", ".dll", ".msi", ".bat", ".cmd", ".ps1", ".vbs",
      ".jar", ".apk", ".zip", ".rar", ".7z",  ".cab", ".pif", ".hta"};
  std::string path = Lower(href.substr(0, href.find_first_of("?#")));
  for (auto ext : kExtensions) {
    if (path.size() > ext.size() &&
        path.compare(path.size() - ext.size(), ext.size(), ext) == 0) {
      return true;
    }
  }
  return false;
}

HtmlFindings ScanHtml(std::string_view html) {
  HtmlFindings findings;
  std::unique_ptr<GumboOutput, void (*)(GumboOutput*)> output(
      gumbo_parse_with_options(&kGumboDefaultOptions, html.data(), html.size()),
      [](GumboOutput* o) { gumbo_destroy_output(&kGumboDefaultOptions, o); });
  if (!output) return findings;
  Scanner scanner(&findings);
  scanner.Visit(output->root, 0);
  return findings;
}

}  // namespace tq
