-- wrk script: single-event alloy interact requests, each event unique (so none is deduplicated).
-- Used by bench/edge_wrk.sh; the body is the captured alloy page view with a counter and the
-- current time substituted.
local counter = 0
local thread_id = 0
local template = [[{"events":[{"xdm":{"web":{"webPageDetails":{"URL":"https://shop.koppla.test/p/%s","name":"wrk-%s"},"webReferrer":{"URL":""}},"device":{"screenHeight":720,"screenWidth":1280,"screenOrientation":"landscape"},"environment":{"type":"browser","browserDetails":{"viewportWidth":1280,"viewportHeight":720}},"placeContext":{"localTimezoneOffset":0,"localTime":"%s","ianaTimezone":"UTC"},"timestamp":"%s","implementationDetails":{"name":"https://ns.adobe.com/experience/alloy","version":"2.33.1","environment":"browser"},"eventType":"web.webpagedetails.pageViews"},"query":{"personalization":{"schemas":["https://ns.adobe.com/personalization/default-content-item","https://ns.adobe.com/personalization/html-content-item"],"decisionScopes":["__view__"],"surfaces":["web://shop.koppla.test/"]}}}],"query":{"identity":{"fetch":["ECID","CORE"]}},"meta":{"queueTimeMillis":61,"state":{"domain":"koppla.test","cookiesEnabled":true}}}]]

function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
end

function init(args)
  run = args[1] or "run"
  wrk.headers["Content-Type"] = "text/plain; charset=UTF-8"
  wrk.headers["Origin"] = "https://shop.koppla.test"
end

function request()
  counter = counter + 1
  local id = run .. "-" .. tid .. "-" .. counter
  local stamp = os.date("!%Y-%m-%dT%H:%M:%S.000Z")
  local body = string.format(template, id, id, stamp, stamp)
  return wrk.format("POST", nil, nil, body)
end
