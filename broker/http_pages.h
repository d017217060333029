// The console's HTML: every page rendered on the server from plain data, every
// value escaped here and nowhere else. A page has a static part and a live
// part; the browser re-fetches only the live part (X-Live: 1) every second.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/read_model.h"
#include "tq/client.h"

namespace tq {

// &, <, >, " and ' as entities: safe in text and in quoted attributes.
std::string HtmlEscape(std::string_view text);
// Percent-encodes everything but unreserved characters (RFC 3986).
std::string UrlEncode(std::string_view text);
// "2026-12-03 11:41:09" (UTC); "" for 0.
std::string FormatTime(int64_t wall_ms);
// The text, pretty-printed when it parses as JSON.
std::string PrettyJson(std::string_view text);

struct Page {
  std::string title;
  std::string body;  // static: forms, filters
  std::string live;  // replaced every second
};

// The whole document: head, navigation, body and live part.
std::string RenderDocument(const Page& page, std::string_view active_nav);

struct OverviewData {
  std::vector<QueueSummary> queues;
  BrokerStats stats;
  std::vector<WorkerSummary> workers;
  std::vector<MinuteCount> minutes;
  std::string broker_error;  // set when the broker did not answer
};
Page RenderOverview(const OverviewData& d);

struct WorkersView {
  std::vector<WorkerSummary> workers;
  std::vector<bool> draining;          // per worker
  std::vector<WorkerSummary> offline;  // left within the last hour
  std::string broker_error;
  std::string notice;
  std::string csrf;
};
Page RenderWorkers(const WorkersView& v);

Page RenderBatchList(const BatchListPage& page);

struct BatchView {
  std::string batch_id;
  StateCounts counts;
  TaskFilter filter;
  TaskPage tasks;
  std::vector<std::string> upload_report;  // lines, as tq-submit prints them
  std::string notice;                      // e.g. "cancelled 3 tasks"
  std::string csrf;
};
Page RenderBatch(const BatchView& v);

// t.history: every ended attempt (the broker's TaskRequest, as tq-ctl task
// shows them); lease: where it runs now, or null.
Page RenderTask(const TaskDetail& t, const RunningTask* lease = nullptr);

struct UploadView {
  std::string csrf;
  std::vector<std::string> errors;  // as tq-submit prints them
  // Form values to keep after an error.
  std::string urls, countries, user_agent, referer, proxy, time_limit, priority,
      max_attempts;
};
Page RenderUpload(const UploadView& v);

Page RenderLogin(const std::string& error);
Page RenderMessage(const std::string& title, const std::string& message);

// The embedded assets.
extern const char kConsoleCss[];
extern const char kConsoleJs[];

}  // namespace tq
