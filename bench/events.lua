-- wrk script for bench/events_load.py: realistic event batches for POST /v1/events.
--
-- Each request is one batch of 1-4 events (page_view, product_view, category_view, cart_add) from one of
-- POOL visitors, each with a session that now and then starts afresh, and a unique random batch id; a batch
-- that opens with a page view says that its page holds no action armed, as the tag does.
-- Arguments after "--": SITE ORIGIN. Counts every status code, the answers that carry an action, and keeps
-- the first non-2xx body; done() prints them as "STATUS <code> <count>", "ACTIONS <count>" and
-- "SAMPLE <code> <body>" lines for the caller to check.

local POOL = 5000
local PRODUCTS = 500
local CATEGORIES = 20
local PAGE_TYPES = { "home", "product", "category", "cart", "search", "content" }

local site = "bench"
local visitors, sessions = {}, {}
statuses = {}
with_actions = 0
sample_status, sample_body = nil, nil

local threads = {}

local function hex(chars)
  local parts = {}
  for i = 1, chars / 4 do
    parts[i] = string.format("%04x", math.random(0, 0xffff))
  end
  return table.concat(parts)
end

function setup(thread)
  thread:set("thread_number", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() * 1000 + (thread_number or 1))
  site = args[1] or site
  for i = 1, POOL do
    visitors[i] = hex(32)
    sessions[i] = hex(32)
  end
  wrk.method = "POST"
  wrk.path = "/v1/events"
  wrk.headers["Content-Type"] = "text/plain;charset=UTF-8"
  wrk.headers["Origin"] = args[2] or "http://shop.bench"
end

local function product()
  local n = math.random(1, PRODUCTS)
  local price = string.format("%.2f", 5 + (n * 7919 % 20000) / 100)
  return n, price, (n % CATEGORIES) + 1
end

local function page_view()
  local page_type = PAGE_TYPES[math.random(1, #PAGE_TYPES)]
  return "page_view", "/" .. page_type,
    string.format('{"page_type":"%s","title":"Bench shop - %s"}', page_type, page_type)
end

local function product_view()
  local n, price, cat = product()
  return "product_view", "/p/" .. n,
    string.format('{"id":"p%d","name":"Product %d","price":%s,"category":"cat-%d"}', n, n, price, cat)
end

local function cart_add()
  local n, price, cat = product()
  return "cart_add", "/p/" .. n, string.format(
    '{"id":"p%d","qty":%d,"price":%s,"name":"Product %d","category":"cat-%d"}',
    n, math.random(1, 3), price, n, cat)
end

local function category_view()
  local cat = math.random(1, CATEGORIES)
  return "category_view", "/c/" .. cat, string.format('{"id":"cat-%d"}', cat)
end

-- Roughly a shop's mix: mostly page and product views, fewer category views, a few cart adds.
local KINDS = { page_view, page_view, page_view, product_view, product_view, product_view,
  category_view, category_view, cart_add }

local function event(ts, ref)
  local kind, path, props = KINDS[math.random(1, #KINDS)]()
  local url = "http://shop.bench" .. path
  return string.format('{"type":"%s","ts":%.0f,"url":"%s","ref":"%s","props":%s}',
    kind, ts, url, ref, props), url, kind
end

function request()
  local i = math.random(1, POOL)
  if math.random(1, 50) == 1 then
    sessions[i] = hex(32)
  end
  local ts = os.time() * 1000.0
  local count, events, ref, first, kind = math.random(1, 4), {}, "", nil, nil
  for k = 1, count do
    events[k], ref, kind = event(ts - (count - k) * 1500, ref)
    first = first or kind
  end
  -- A batch opening a page holds nothing armed yet, and the tag says so; other batches say nothing, so
  -- their answers withdraw among what the session's answers may have armed.
  local armed = first == "page_view" and ',"armed":[]' or ""
  local body = string.format('{"site":"%s","visitor":"%s","session":"%s","batch":"%s","events":[%s]%s}',
    site, visitors[i], sessions[i], hex(32), table.concat(events, ","), armed)
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if string.find(body, '"kind"', 1, true) then
    with_actions = with_actions + 1
  end
  if (status < 200 or status > 299) and sample_status == nil then
    sample_status, sample_body = status, body
  end
end

function done(summary, latency, requests)
  local totals, actions, first_status, first_body = {}, 0, nil, nil
  for _, thread in ipairs(threads) do
    actions = actions + thread:get("with_actions")
    for status, count in pairs(thread:get("statuses")) do
      totals[status] = (totals[status] or 0) + count
    end
    if first_status == nil and thread:get("sample_status") ~= nil then
      first_status, first_body = thread:get("sample_status"), thread:get("sample_body")
    end
  end
  io.write(string.format("ACTIONS %d\n", actions))
  for status, count in pairs(totals) do
    io.write(string.format("STATUS %d %d\n", status, count))
  end
  if first_status ~= nil then
    io.write(string.format("SAMPLE %d %s\n", first_status, (first_body or ""):gsub("\n", " "):sub(1, 300)))
  end
end
