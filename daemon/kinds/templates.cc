// TemplateJson: an annotated, filled-in example per kind for
// `kontor template KIND`. It must pass ParsePayloadJson and ValidatePayload
// (tests/kinds/kinds_test.cc checks every kind).
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "daemon/common/ids.h"
#include "daemon/common/kinds.h"
#include "daemon/kinds/kinds.h"

namespace kontor::kinds {
namespace {

constexpr char kExampleCase[] = "EE-TRM-2026-0042";
constexpr char kExampleId[] = "9b21db3e-5795-43e7-bad2-ae731ea4769e";

std::string Quote(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      absl::StrAppend(&out, "\\", std::string(1, c));
    } else if (static_cast<unsigned char>(c) < 0x20) {
      absl::StrAppendFormat(&out, "\\u%04x", c);
    } else {
      out.push_back(c);
    }
  }
  return out + "\"";
}

// Writes pretty JSON with "//" comment lines; commas are added as members
// follow each other.
class Writer {
 public:
  Writer() { open_.push_back({-1, ' '}); }

  void Comment(absl::string_view text) {
    for (absl::string_view l : absl::StrSplit(text, '\n')) {
      lines_.push_back(absl::StrCat(Pad(), "// ", l));
    }
  }
  void Str(absl::string_view key, absl::string_view value) {
    Member(Key(key) + Quote(value));
  }
  void List(absl::string_view key, const std::vector<std::string>& values) {
    std::vector<std::string> quoted;
    for (const auto& v : values) quoted.push_back(Quote(v));
    Member(absl::StrCat(Key(key), "[", absl::StrJoin(quoted, ", "), "]"));
  }
  // An object (or with '[', a list); key "" inside lists and at the top.
  void Open(absl::string_view key, char bracket = '{') {
    Member(Key(key) + bracket);
    open_.push_back({-1, bracket == '{' ? '}' : ']'});
  }
  void Close() {
    const char bracket = open_.back().second;
    open_.pop_back();
    lines_.push_back(Pad() + bracket);
    open_.back().first = static_cast<int>(lines_.size()) - 1;
  }
  std::string Text() const { return absl::StrJoin(lines_, "\n") + "\n"; }

 private:
  std::string Pad() const { return std::string(2 * (open_.size() - 1), ' '); }
  static std::string Key(absl::string_view key) {
    return key.empty() ? "" : Quote(key) + ": ";
  }
  void Member(const std::string& text) {
    if (open_.back().first >= 0) lines_[open_.back().first] += ",";
    lines_.push_back(Pad() + text);
    open_.back().first = static_cast<int>(lines_.size()) - 1;
  }

  std::vector<std::string> lines_;
  // Per open object or list: the line of its last member, closing bracket.
  std::vector<std::pair<int, char>> open_;
};

const char* Describe(absl::string_view kind) {
  static const std::pair<const char*, const char*> kWhat[] = {
      {"note", "free text between contact points"},
      {"referral.consult", "anonymous consultation before consent (TRM)"},
      {"referral", "refer a presumed victim of trafficking (TRM)"},
      {"referral.response", "accept, decline or ask more about a referral"},
      {"case.update", "follow-up of a TRM case"},
      {"consent.update", "the person's consent given or withdrawn"},
      {"intel.report", "liaison intelligence"},
      {"intel.request", "an information request with urgency and deadline"},
      {"intel.response", "the answer to an intel.request"},
      {"incident.report", "border incident, first report or update"},
      {"sitrep", "daily situation report"},
      {"alert", "flash alert"},
      {"restriction.update", "change the handling of earlier messages"},
      {"erase.notice", "ask all recipients to rectify or erase messages"},
  };
  for (const auto& [k, what] : kWhat) {
    if (kind == k) return what;
  }
  return "";
}

class Template {
 public:
  Template(absl::string_view kind, const TemplateOptions& opts)
      : kind_(kind),
        now_(absl::FromUnixMillis(opts.now_ms)),
        case_ref_(opts.case_ref.empty() ? kExampleCase : opts.case_ref),
        case_given_(!opts.case_ref.empty()),
        id_(opts.in_reply_to.empty() ? kExampleId : opts.in_reply_to) {}

  std::string Build();

 private:
  std::string Time(absl::Duration from_now) const {
    return absl::FormatTime("%Y-%m-%dT%H:%M:00Z", now_ + from_now,
                            absl::UTCTimeZone());
  }
  void Markings(absl::string_view key, absl::string_view handling,
                absl::string_view purpose, bool evaluation);
  void Person(absl::string_view key, absl::string_view category,
              bool identified);
  void Consent(absl::string_view status);
  void Contact(absl::string_view key, absl::string_view name,
               absl::string_view phone);
  void Entities();
  void Section();

  const std::string kind_;
  const absl::Time now_;
  const std::string case_ref_;
  const bool case_given_;
  const std::string id_;
  Writer w_;
};

void Template::Markings(absl::string_view key, absl::string_view handling,
                        absl::string_view purpose, bool evaluation) {
  w_.Open(key);
  w_.Comment(
      "Handling code: H0 no restriction, H1 not for use as evidence without\n"
      "the provider's permission, H2 not to be passed on without the\n"
      "provider's permission, H3 other conditions, written in\n"
      "\"handling_text\" (required with H3).");
  w_.Str("handling", handling);
  if (handling == "H3") {
    w_.Str("handling_text", "Only for the border guard units of the region");
  }
  w_.Comment("Purpose of the transfer and its legal basis (required).");
  w_.Str("purpose", purpose);
  if (evaluation) {
    w_.Comment(
        "Source reliability (required here): A reliable, B usually reliable,\n"
        "C not reliable, X cannot be judged (legacy D is read as X).");
    w_.Str("source_reliability", "B");
    w_.Comment(
        "Information accuracy (required here): 1 known directly to the\n"
        "source, 2 known indirectly and corroborated, 3 not corroborated,\n"
        "4 cannot be judged.");
    w_.Str("information_accuracy", "2");
  } else if (key == "markings") {
    w_.Comment(
        "Optional: \"source_reliability\" (A B C X) and\n"
        "\"information_accuracy\" (1 2 3 4).");
  }
  w_.Comment("Optional TLP 2.0 label: RED AMBER AMBER+STRICT GREEN CLEAR.");
  w_.Str("tlp", "AMBER");
  w_.Comment("Optional: review or erase by this date, YYYY-MM-DD, not past.");
  w_.Str("review_by", absl::FormatTime("%Y-%m-%d", now_ + absl::Hours(24 * 365),
                                       absl::UTCTimeZone()));
  w_.Close();
}

void Template::Person(absl::string_view key, absl::string_view category,
                      bool identified) {
  w_.Open(key);
  w_.Comment("Data-subject category: suspect, convicted, victim, other.");
  w_.Str("category", category);
  if (!identified) {
    w_.Comment(
        "Not identified: a description only. Identified persons have\n"
        "family_name, given_names, date_of_birth or identifiers.");
    w_.Str("description", "man, about 40, short grey hair, drove the van");
    w_.Close();
    return;
  }
  w_.Str("family_name", category == "victim" ? "Tamm" : "Berg");
  w_.Str("given_names", category == "victim" ? "Mari" : "Jonas Erik");
  w_.Comment("YYYY-MM-DD, not in the future.");
  w_.Str("date_of_birth", category == "victim" ? "1999-03-14" : "1981-11-02");
  w_.Comment("Two letters, ISO 3166 alpha-2.");
  w_.Str("nationality", category == "victim" ? "UA" : "LV");
  w_.Str("gender", category == "victim" ? "female" : "male");
  w_.Comment("Documents and numbers as \"type:value\".");
  w_.List("identifiers", {"passport:FX1234567", "phone:+37255501234"});
  w_.Comment("Optional: \"description\" (appearance, circumstances).");
  w_.Close();
}

void Template::Consent(absl::string_view status) {
  w_.Open("consent");
  w_.Comment("given | withdrawn");
  w_.Str("status", status);
  w_.Comment("When it was recorded: RFC 3339, UTC, not in the future.");
  w_.Str("recorded_at", Time(-absl::Hours(1)));
  w_.Str("recorded_by", "Kristiina Kask, Social Insurance Board");
  w_.Comment("What the person agreed to share, and with whom.");
  w_.Str("scope",
         "Identity, needs and risks, to the receiving country's referral "
         "mechanism, for assistance and safe return");
  w_.Close();
}

void Template::Contact(absl::string_view key, absl::string_view name,
                       absl::string_view phone) {
  w_.Open(key);
  w_.Str("name", name);
  w_.Str("organisation", "State Agency for Child Protection");
  w_.Comment("A phone or an email (or both).");
  w_.Str("phone", phone);
  w_.Str("email", "trm@example.gov");
  w_.Close();
}

void Template::Entities() {
  w_.Comment(
      "Other entities: type (vehicle vessel organisation phone document\n"
      "location ...) and value.");
  w_.Open("entities", '[');
  w_.Open("");
  w_.Str("type", "vehicle");
  w_.Str("value", "white Ford Transit, plate ABC-123 (LV)");
  w_.Close();
  w_.Close();
}

void Template::Section() {
  const std::string section = ContentField(kind_);
  w_.Open(section);
  if (kind_ == "referral.consult") {
    w_.Comment("Anonymous: facts only, no names, dates of birth or files.");
    w_.Str("facts",
           "Woman in her twenties, recruited for seasonal farm work, "
           "documents withheld by the employer");
    w_.Comment(
        "sexual labour criminal_activities begging forced_marriage\n"
        "organ_removal other");
    w_.Str("exploitation_type", "labour");
    w_.Str("question", "Could your mechanism assist her on return?");
    w_.Str("requested_service", "shelter and return assistance");
  } else if (kind_ == "referral") {
    w_.Comment(
        "The presumed victim (category victim). An identified person needs\n"
        "a consent record below; otherwise give only a description.");
    Person("person", "victim", true);
    w_.Comment(
        "sexual labour criminal_activities begging forced_marriage\n"
        "organ_removal other");
    w_.Str("exploitation_type", "labour");
    w_.Comment("Needs, one per item.");
    w_.List("needs", {"safe accommodation", "medical care", "interpreter"});
    w_.Str("risk_summary", "Recruiter knows her home address");
    w_.Comment("Required for an identified person: status \"given\".");
    Consent("given");
    w_.Comment("The service asked of the recipient (required).");
    w_.Str("requested_service", "assisted voluntary return and reception");
  } else if (kind_ == "referral.response") {
    w_.Comment("accept | decline | info_pending");
    w_.Str("decision", "accept");
    w_.Comment("With accept: name and phone or email (required).");
    Contact("key_contact", "Olena Koval", "+380441234567");
    Contact("alternate_contact", "Petro Marchenko", "+380441234568");
    w_.Comment(
        "With decline and info_pending: \"reason\" (why, or what is\n"
        "missing) is required.");
  } else if (kind_ == "case.update") {
    w_.Comment("assessment return_plan arrival closure other");
    w_.Str("case_state", "return_plan");
    w_.Str("text", "Return planned for next week; escort arranged.");
  } else if (kind_ == "consent.update") {
    w_.Comment("A withdrawal stops identified data: recipients erase it.");
    Consent("withdrawn");
    w_.Comment("Message id of the referral this consent is about.");
    w_.Str("referral_id", id_);
  } else if (kind_ == "intel.report") {
    w_.Str("subject", "Facilitation network on the southern route");
    w_.Str("body", "The network moves groups of 5 to 10 people weekly by van.");
    w_.Comment("Persons: each with a category, identified or described.");
    w_.Open("persons", '[');
    Person("", "suspect", true);
    Person("", "other", false);
    w_.Close();
    Entities();
  } else if (kind_ == "intel.request") {
    w_.Str("question", "Is this vehicle known to you, and who is its keeper?");
    w_.Comment("routine | urgent | immediate");
    w_.Str("urgency", "urgent");
    w_.Comment("Why (required unless routine).");
    w_.Str("urgency_ground", "The vehicle is expected at the border tonight");
    w_.Comment("Deadline: RFC 3339, UTC, in the future.");
    w_.Str("due_by", Time(absl::Hours(72)));
    Entities();
  } else if (kind_ == "intel.response") {
    w_.Comment(
        "The answer; or, when not answered, leave it out and give a\n"
        "\"refusal_code\": not_available legal_restriction\n"
        "purpose_not_met needs_judicial_authorisation other.");
    w_.Str("answer", "The vehicle is registered to a leasing company.");
    Entities();
  } else if (kind_ == "incident.report") {
    w_.Str("location", "Narva-1 border crossing point");
    w_.Comment("When: RFC 3339, UTC, not in the future.");
    w_.Str("occurred_at", Time(-absl::Hours(2)));
    w_.Str("impact", "Crossing closed for 40 minutes");
    w_.Comment("low | medium | high");
    w_.Str("confidence", "medium");
    w_.Str("description", "Attempted crossing with forged documents.");
    w_.Open("persons", '[');
    Person("", "suspect", false);
    w_.Close();
  } else if (kind_ == "sitrep") {
    w_.Comment("The period: RFC 3339, UTC; the end after the start.");
    w_.Str("period_start", Time(-absl::Hours(24)));
    w_.Str("period_end", Time(absl::ZeroDuration()));
    w_.Str("summary", "Traffic normal; two refusals of entry.");
  } else if (kind_ == "alert") {
    w_.Str("location", "Southern border sector, km 120-140");
    w_.Comment("Validity window: RFC 3339, UTC; until after from.");
    w_.Str("valid_from", Time(absl::ZeroDuration()));
    w_.Str("valid_until", Time(absl::Hours(12)));
    w_.Str("text", "Armed group expected to attempt a crossing tonight.");
    w_.Open("persons", '[');
    Person("", "suspect", false);
    w_.Close();
  } else if (kind_ == "restriction.update") {
    w_.Comment("Message ids of the earlier messages (at least one).");
    w_.List("refers_to", {id_});
    w_.Comment("Their new markings (same fields as \"markings\").");
    Markings("new_markings", "H3", "Investigation of a trafficking network",
             false);
    w_.Str("text", "Restricted after the start of an investigation.");
  } else if (kind_ == "erase.notice") {
    w_.Comment("Message ids of the earlier messages (at least one).");
    w_.List("refers_to", {id_});
    w_.Comment("erase | rectify");
    w_.Str("action", "erase");
    w_.Str("reason", "The person withdrew her consent.");
  }
  w_.Close();
}

std::string Template::Build() {
  w_.Comment(
      absl::StrCat("kontor template ", kind_, ": ", Describe(kind_), "."));
  w_.Comment(
      "Lines starting with // are ignored. Change the values, then send with\n"
      "  kontor send --to NODE --payload-json FILE" +
      std::string(kind_ == "alert" ? " --priority flash" : ""));
  if (kind_ == "note") {
    w_.Comment("The text of a note is sent from a file: --body-file FILE.");
  }
  w_.Open("");
  w_.Comment("The message kind; the section below must match it.");
  w_.Str("kind", kind_);
  w_.Comment("Subject, shown in message lists: no personal data here.");
  w_.Str("subject", absl::StrCat("Example ", kind_));
  const bool reply = kind_ == "referral.response" ||
                     kind_ == "intel.response" || kind_ == "consent.update";
  if (reply && !case_given_) {
    w_.Comment(
        "Case reference: a reply takes the case of what it answers; leave it\n"
        "out, or give that same case.");
  } else {
    w_.Comment("Case reference: messages with the same case_ref are a thread.");
    w_.Str("case_ref", case_ref_);
  }
  if (kind_ == "referral.response" || kind_ == "intel.response") {
    w_.Comment(
        absl::StrCat("Message id of the ",
                     kind_ == "intel.response" ? "intel.request" : "referral",
                     " this answers (required)."));
    w_.Str("in_reply_to", id_);
  }
  if (kind_ != "note") {
    const bool evaluation = kind_ == "intel.report" ||
                            kind_ == "incident.report" ||
                            kind_ == "intel.response";
    w_.Comment("Markings (required): how the recipients may use it.");
    Markings("markings", kind_ == "sitrep" ? "H0" : "H2",
             kind_.rfind("intel", 0) == 0 || kind_ == "incident.report" ||
                     kind_ == "alert" || kind_ == "sitrep"
                 ? "Border security cooperation (Schengen Borders Code, "
                   "bilateral agreement)"
                 : "Assistance to a presumed victim of trafficking "
                   "(national referral mechanism)",
             evaluation);
    Section();
  }
  w_.Close();
  return w_.Text();
}

}  // namespace

absl::StatusOr<std::string> TemplateJson(absl::string_view kind,
                                         const TemplateOptions& opts) {
  if (!IsMessageKind(kind)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "no template for \"", Printable(kind, 40), "\": the kinds are ",
        absl::StrJoin(MessageKinds(), ", ")));
  }
  return Template(kind, opts).Build();
}

}  // namespace kontor::kinds
