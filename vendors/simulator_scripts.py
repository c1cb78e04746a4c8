"""The Redis store's Lua scripts: each vendor call's steps, atomic in one round trip.

Arguments and replies travel as one JSON string each: redis-py packs and parses a
multi-bulk reply element by element in Python, which costs more than the script.
"""

# Lua's unpack has a stack limit, so commands with many arguments go in slices of
# 1000 arguments (an even number, so field-value pairs stay together).
_LUA_SLICES = """
local function in_slices(command, key, items)
  local replies = {}
  for first = 1, #items, 1000 do
    local last = math.min(first + 999, #items)
    local reply = redis.call(command, key, unpack(items, first, last))
    if type(reply) == 'table' then
      for i = 1, #reply do
        replies[first + i - 1] = reply[i]
      end
    end
  end
  return replies
end
"""

# KEYS: results, attempts, counters, rate. ARGV[1]: the send ids, a JSON list.
# Returns the JSON list [rate or "", then per send id its result or attempt number].
BEGIN = (
    _LUA_SLICES
    + """
local send_ids = cjson.decode(ARGV[1])
local answers = {redis.call('GET', KEYS[4]) or ''}
local results = in_slices('HMGET', KEYS[1], send_ids)
local new_ids, positions = {}, {}
for i, send_id in ipairs(send_ids) do
  if results[i] then
    answers[i + 1] = results[i]
  else
    new_ids[#new_ids + 1] = send_id
    positions[#positions + 1] = i + 1
  end
end
if #new_ids < #send_ids then
  redis.call('HINCRBY', KEYS[3], 'duplicates', #send_ids - #new_ids)
end
-- Attempt numbers are read and written back in two commands, not one per id; a
-- send id twice in the call gets consecutive attempts, as it would in two calls.
local attempts, latest, updates = in_slices('HMGET', KEYS[2], new_ids), {}, {}
for j, send_id in ipairs(new_ids) do
  local attempt = (latest[send_id] or tonumber(attempts[j]) or 0) + 1
  latest[send_id] = attempt
  answers[positions[j]] = attempt
end
for send_id, attempt in pairs(latest) do
  updates[#updates + 1] = send_id
  updates[#updates + 1] = attempt
end
in_slices('HSET', KEYS[2], updates)
return cjson.encode(answers)
"""
)

# KEYS: results, counters, accepted counts, receipts. ARGV[1]: the decisions, a JSON
# list of [send id, kind, error code, result, receipt due, receipt]. The writes go
# out as one HSET and one ZADD for the whole call. Returns "" or, when another call
# settled some send ids first, the JSON list of [position, its result] for those.
COMMIT = (
    _LUA_SLICES
    + """
local raced, counts, results, receipts, accepted = {}, {}, {}, {}, {}
local function bump(name)
  counts[name] = (counts[name] or 0) + 1
end
local decisions = cjson.decode(ARGV[1])
local send_ids = {}
for i, d in ipairs(decisions) do
  send_ids[i] = d[1]
end
local stored = in_slices('HMGET', KEYS[1], send_ids)
for i, d in ipairs(decisions) do
  local send_id, kind = d[1], d[2]
  local existing = stored[i] or results[send_id]
  if existing then
    bump('duplicates')
    raced[#raced + 1] = {i - 1, existing}
  else
    if kind == 'accepted' then
      results[send_id] = d[4]
      accepted[#accepted + 1] = send_id
      receipts[#receipts + 1] = d[5]
      receipts[#receipts + 1] = d[6]
      bump('accepted')
    else
      if kind == 'permanent' then
        results[send_id] = d[4]
      end
      bump('failed:' .. d[3])
    end
  end
end
local fields = {}
for send_id, result in pairs(results) do
  fields[#fields + 1] = send_id
  fields[#fields + 1] = result
end
in_slices('HSET', KEYS[1], fields)
in_slices('ZADD', KEYS[4], receipts)
-- Each send id is accepted once per call at most (results above), so a read and
-- one write count them all.
local counted, accepted_counts = in_slices('HMGET', KEYS[3], accepted), {}
for j, send_id in ipairs(accepted) do
  accepted_counts[#accepted_counts + 1] = send_id
  accepted_counts[#accepted_counts + 1] = (tonumber(counted[j]) or 0) + 1
end
in_slices('HSET', KEYS[3], accepted_counts)
for name, count in pairs(counts) do
  redis.call('HINCRBY', KEYS[2], name, count)
end
if #raced == 0 then
  return ''
end
return cjson.encode(raced)
"""
)

# KEYS: receipts, counters. ARGV: now (ms), limit. The due receipts are the lowest
# ranked, so removing that many ranks from the bottom removes exactly them.
# Returns "" or the JSON list of the receipts taken.
POP = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
if #due == 0 then
  return ''
end
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, #due - 1)
redis.call('HINCRBY', KEYS[2], 'receipts_emitted', #due)
return cjson.encode(due)
"""
