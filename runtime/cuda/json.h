// A small JSON reader and writer for the runner's plans and results.
// Objects keep their key order so that results read in the order they were written.
#pragma once
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace json {

struct ParseError : std::runtime_error {
  int line, col;
  ParseError(const std::string& msg, int line, int col)
      : std::runtime_error(std::to_string(line) + ":" + std::to_string(col) + ": " + msg), line(line), col(col) {}
};

enum class Kind { Null, Bool, Number, String, Array, Object };

struct Value {
  Kind kind = Kind::Null;
  bool b = false;
  double num = 0;
  std::string str;
  std::vector<Value> arr;
  std::vector<std::pair<std::string, Value>> obj;

  Value() = default;
  static Value null() { return Value(); }
  static Value boolean(bool v) { Value x; x.kind = Kind::Bool; x.b = v; return x; }
  static Value number(double v) { Value x; x.kind = Kind::Number; x.num = v; return x; }
  static Value string(std::string v) { Value x; x.kind = Kind::String; x.str = std::move(v); return x; }
  static Value array() { Value x; x.kind = Kind::Array; return x; }
  static Value object() { Value x; x.kind = Kind::Object; return x; }

  bool isNull() const { return kind == Kind::Null; }
  bool isNumber() const { return kind == Kind::Number; }
  bool isString() const { return kind == Kind::String; }
  bool isArray() const { return kind == Kind::Array; }
  bool isObject() const { return kind == Kind::Object; }
  bool isBool() const { return kind == Kind::Bool; }

  const Value* get(const std::string& key) const {
    if (kind != Kind::Object) return nullptr;
    for (auto& kv : obj)
      if (kv.first == key) return &kv.second;
    return nullptr;
  }
  // Replaces an existing key so that set() twice does not produce duplicate keys.
  Value& set(const std::string& key, Value v) {
    for (auto& kv : obj)
      if (kv.first == key) { kv.second = std::move(v); return kv.second; }
    obj.emplace_back(key, std::move(v));
    return obj.back().second;
  }
  Value& push(Value v) { arr.push_back(std::move(v)); return arr.back(); }
};

class Parser {
 public:
  explicit Parser(const std::string& text) : s_(text) {}

  Value parseDocument() {
    skipWs();
    Value v = parseValue(0);
    skipWs();
    if (i_ < s_.size()) fail("unexpected text after the JSON value");
    return v;
  }

 private:
  const std::string& s_;
  size_t i_ = 0;
  int line_ = 1;
  size_t lineStart_ = 0;

  [[noreturn]] void fail(const std::string& msg) const {
    throw ParseError(msg, line_, static_cast<int>(i_ - lineStart_) + 1);
  }
  void skipWs() {
    while (i_ < s_.size()) {
      char c = s_[i_];
      if (c == '\n') { i_++; line_++; lineStart_ = i_; }
      else if (c == ' ' || c == '\t' || c == '\r') i_++;
      else break;
    }
  }
  bool consumeWord(const char* w) {
    size_t n = std::strlen(w);
    if (s_.compare(i_, n, w) == 0) { i_ += n; return true; }
    return false;
  }

  Value parseValue(int depth) {
    // Plans are shallow; the bound turns a hostile input into an error instead of a stack overflow.
    if (depth > 200) fail("nesting deeper than 200");
    if (i_ >= s_.size()) fail("unexpected end of input");
    char c = s_[i_];
    if (c == '{') return parseObject(depth);
    if (c == '[') return parseArray(depth);
    if (c == '"') return Value::string(parseString());
    if (c == '-' || (c >= '0' && c <= '9')) return Value::number(parseNumber());
    if (consumeWord("true")) return Value::boolean(true);
    if (consumeWord("false")) return Value::boolean(false);
    if (consumeWord("null")) return Value::null();
    fail(std::string("unexpected character '") + c + "'");
  }

  Value parseObject(int depth) {
    Value v = Value::object();
    i_++;
    skipWs();
    if (i_ < s_.size() && s_[i_] == '}') { i_++; return v; }
    for (;;) {
      skipWs();
      if (i_ >= s_.size() || s_[i_] != '"') fail("expected a string key");
      std::string key = parseString();
      skipWs();
      if (i_ >= s_.size() || s_[i_] != ':') fail("expected ':' after key");
      i_++;
      skipWs();
      v.set(key, parseValue(depth + 1));
      skipWs();
      if (i_ < s_.size() && s_[i_] == ',') { i_++; continue; }
      if (i_ < s_.size() && s_[i_] == '}') { i_++; return v; }
      fail("expected ',' or '}' in object");
    }
  }

  Value parseArray(int depth) {
    Value v = Value::array();
    i_++;
    skipWs();
    if (i_ < s_.size() && s_[i_] == ']') { i_++; return v; }
    for (;;) {
      skipWs();
      v.push(parseValue(depth + 1));
      skipWs();
      if (i_ < s_.size() && s_[i_] == ',') { i_++; continue; }
      if (i_ < s_.size() && s_[i_] == ']') { i_++; return v; }
      fail("expected ',' or ']' in array");
    }
  }

  double parseNumber() {
    size_t start = i_;
    if (s_[i_] == '-') i_++;
    if (i_ >= s_.size() || !isdigit(static_cast<unsigned char>(s_[i_]))) fail("expected a digit");
    if (s_[i_] == '0') i_++;
    else while (i_ < s_.size() && isdigit(static_cast<unsigned char>(s_[i_]))) i_++;
    if (i_ < s_.size() && s_[i_] == '.') {
      i_++;
      if (i_ >= s_.size() || !isdigit(static_cast<unsigned char>(s_[i_]))) fail("expected a digit after '.'");
      while (i_ < s_.size() && isdigit(static_cast<unsigned char>(s_[i_]))) i_++;
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      i_++;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) i_++;
      if (i_ >= s_.size() || !isdigit(static_cast<unsigned char>(s_[i_]))) fail("expected a digit in exponent");
      while (i_ < s_.size() && isdigit(static_cast<unsigned char>(s_[i_]))) i_++;
    }
    return std::strtod(s_.substr(start, i_ - start).c_str(), nullptr);
  }

  unsigned hex4() {
    if (i_ + 4 > s_.size()) fail("truncated \\u escape");
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
      char c = s_[i_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= c - '0';
      else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
      else fail("bad hex digit in \\u escape");
    }
    return v;
  }

  static void appendUtf8(std::string& out, unsigned cp) {
    if (cp < 0x80) out += static_cast<char>(cp);
    else if (cp < 0x800) { out += static_cast<char>(0xC0 | (cp >> 6)); out += static_cast<char>(0x80 | (cp & 0x3F)); }
    else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  std::string parseString() {
    i_++;  // opening quote
    std::string out;
    for (;;) {
      if (i_ >= s_.size()) fail("unterminated string");
      char c = s_[i_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in string");
      if (c != '\\') { out += c; continue; }
      if (i_ >= s_.size()) fail("unterminated escape");
      char e = s_[i_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned cp = hex4();
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (!(i_ + 1 < s_.size() && s_[i_] == '\\' && s_[i_ + 1] == 'u')) fail("lone high surrogate");
            i_ += 2;
            unsigned lo = hex4();
            if (lo < 0xDC00 || lo > 0xDFFF) fail("bad low surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            fail("lone low surrogate");
          }
          appendUtf8(out, cp);
          break;
        }
        default: fail(std::string("bad escape '\\") + e + "'");
      }
    }
  }
};

inline Value parse(const std::string& text) { return Parser(text).parseDocument(); }

inline void writeString(std::string& out, const std::string& s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

inline void writeNumber(std::string& out, double v) {
  // JSON has no NaN/Infinity; null is what JSON.stringify writes for them too.
  if (!std::isfinite(v)) { out += "null"; return; }
  char buf[40];
  if (v == std::floor(v) && std::fabs(v) < 9.007199254740992e15) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    // Shortest of %.15g/%.17g that reads back to the same double.
    std::snprintf(buf, sizeof buf, "%.15g", v);
    if (std::strtod(buf, nullptr) != v) std::snprintf(buf, sizeof buf, "%.17g", v);
  }
  out += buf;
}

inline void write(std::string& out, const Value& v, int indent = 2, int level = 0) {
  auto newline = [&](int lvl) {
    if (indent <= 0) return;
    out += '\n';
    out.append(static_cast<size_t>(lvl * indent), ' ');
  };
  switch (v.kind) {
    case Kind::Null: out += "null"; break;
    case Kind::Bool: out += v.b ? "true" : "false"; break;
    case Kind::Number: writeNumber(out, v.num); break;
    case Kind::String: writeString(out, v.str); break;
    case Kind::Array: {
      if (v.arr.empty()) { out += "[]"; break; }
      // Arrays of scalars (shapes, grids) stay on one line; they are read by people.
      bool flat = true;
      for (auto& e : v.arr) flat = flat && !e.isArray() && !e.isObject();
      out += '[';
      for (size_t k = 0; k < v.arr.size(); k++) {
        if (k) out += flat ? ", " : ",";
        if (!flat) newline(level + 1);
        write(out, v.arr[k], indent, level + 1);
      }
      if (!flat) newline(level);
      out += ']';
      break;
    }
    case Kind::Object: {
      if (v.obj.empty()) { out += "{}"; break; }
      out += '{';
      for (size_t k = 0; k < v.obj.size(); k++) {
        if (k) out += ',';
        newline(level + 1);
        writeString(out, v.obj[k].first);
        out += indent > 0 ? ": " : ":";
        write(out, v.obj[k].second, indent, level + 1);
      }
      newline(level);
      out += '}';
      break;
    }
  }
}

inline std::string dump(const Value& v, int indent = 2) {
  std::string out;
  write(out, v, indent, 0);
  return out;
}

}  // namespace json
