// MQTT 5 reason codes: names for logs and the per-packet tables.
#include "mqtt/reason_code.hpp"

#include <cstdint>

namespace mqtt {

namespace {
constexpr const char* kUnknown = "unknown reason code";
}  // namespace

const char* to_string(ReasonCode code) {
  switch (code) {
    case ReasonCode::Success:
      return "Success";
    case ReasonCode::GrantedQos1:
      return "Granted QoS 1";
    case ReasonCode::GrantedQos2:
      return "Granted QoS 2";
    case ReasonCode::DisconnectWithWillMessage:
      return "Disconnect with Will Message";
    case ReasonCode::NoMatchingSubscribers:
      return "No matching subscribers";
    case ReasonCode::NoSubscriptionExisted:
      return "No subscription existed";
    case ReasonCode::ContinueAuthentication:
      return "Continue authentication";
    case ReasonCode::ReAuthenticate:
      return "Re-authenticate";
    case ReasonCode::UnspecifiedError:
      return "Unspecified error";
    case ReasonCode::MalformedPacket:
      return "Malformed Packet";
    case ReasonCode::ProtocolError:
      return "Protocol Error";
    case ReasonCode::ImplementationSpecificError:
      return "Implementation specific error";
    case ReasonCode::UnsupportedProtocolVersion:
      return "Unsupported Protocol Version";
    case ReasonCode::ClientIdentifierNotValid:
      return "Client Identifier not valid";
    case ReasonCode::BadUserNameOrPassword:
      return "Bad User Name or Password";
    case ReasonCode::NotAuthorized:
      return "Not authorized";
    case ReasonCode::ServerUnavailable:
      return "Server unavailable";
    case ReasonCode::ServerBusy:
      return "Server busy";
    case ReasonCode::Banned:
      return "Banned";
    case ReasonCode::ServerShuttingDown:
      return "Server shutting down";
    case ReasonCode::BadAuthenticationMethod:
      return "Bad authentication method";
    case ReasonCode::KeepAliveTimeout:
      return "Keep Alive timeout";
    case ReasonCode::SessionTakenOver:
      return "Session taken over";
    case ReasonCode::TopicFilterInvalid:
      return "Topic Filter invalid";
    case ReasonCode::TopicNameInvalid:
      return "Topic Name invalid";
    case ReasonCode::PacketIdentifierInUse:
      return "Packet Identifier in use";
    case ReasonCode::PacketIdentifierNotFound:
      return "Packet Identifier not found";
    case ReasonCode::ReceiveMaximumExceeded:
      return "Receive Maximum exceeded";
    case ReasonCode::TopicAliasInvalid:
      return "Topic Alias invalid";
    case ReasonCode::PacketTooLarge:
      return "Packet too large";
    case ReasonCode::MessageRateTooHigh:
      return "Message rate too high";
    case ReasonCode::QuotaExceeded:
      return "Quota exceeded";
    case ReasonCode::AdministrativeAction:
      return "Administrative action";
    case ReasonCode::PayloadFormatInvalid:
      return "Payload format invalid";
    case ReasonCode::RetainNotSupported:
      return "Retain not supported";
    case ReasonCode::QosNotSupported:
      return "QoS not supported";
    case ReasonCode::UseAnotherServer:
      return "Use another server";
    case ReasonCode::ServerMoved:
      return "Server moved";
    case ReasonCode::SharedSubscriptionsNotSupported:
      return "Shared Subscriptions not supported";
    case ReasonCode::ConnectionRateExceeded:
      return "Connection rate exceeded";
    case ReasonCode::MaximumConnectTime:
      return "Maximum connect time";
    case ReasonCode::SubscriptionIdentifiersNotSupported:
      return "Subscription Identifiers not supported";
    case ReasonCode::WildcardSubscriptionsNotSupported:
      return "Wildcard Subscriptions not supported";
  }
  return kUnknown;
}

bool known_reason_code(uint8_t code) {
  return to_string(static_cast<ReasonCode>(code)) != kUnknown;
}

namespace {

using RC = ReasonCode;

template <size_t N>
constexpr bool in(const RC (&table)[N], RC code) {
  for (RC c : table) {
    if (c == code) return true;
  }
  return false;
}

// Table 3-1 Connect Reason Code values.
constexpr RC kConnack[] = {
    RC::Success,
    RC::UnspecifiedError,
    RC::MalformedPacket,
    RC::ProtocolError,
    RC::ImplementationSpecificError,
    RC::UnsupportedProtocolVersion,
    RC::ClientIdentifierNotValid,
    RC::BadUserNameOrPassword,
    RC::NotAuthorized,
    RC::ServerUnavailable,
    RC::ServerBusy,
    RC::Banned,
    RC::BadAuthenticationMethod,
    RC::TopicNameInvalid,
    RC::PacketTooLarge,
    RC::QuotaExceeded,
    RC::PayloadFormatInvalid,
    RC::RetainNotSupported,
    RC::QosNotSupported,
    RC::UseAnotherServer,
    RC::ServerMoved,
    RC::ConnectionRateExceeded,
};

// Tables 3-4 (PUBACK) and 3-5 (PUBREC) are the same list.
constexpr RC kPubackPubrec[] = {
    RC::Success,
    RC::NoMatchingSubscribers,
    RC::UnspecifiedError,
    RC::ImplementationSpecificError,
    RC::NotAuthorized,
    RC::TopicNameInvalid,
    RC::PacketIdentifierInUse,
    RC::QuotaExceeded,
    RC::PayloadFormatInvalid,
};

// Tables 3-6 (PUBREL) and 3-7 (PUBCOMP).
constexpr RC kPubrelPubcomp[] = {RC::Success, RC::PacketIdentifierNotFound};

// Table 3-8 Subscribe Reason Codes.
constexpr RC kSuback[] = {
    RC::GrantedQos0,
    RC::GrantedQos1,
    RC::GrantedQos2,
    RC::UnspecifiedError,
    RC::ImplementationSpecificError,
    RC::NotAuthorized,
    RC::TopicFilterInvalid,
    RC::PacketIdentifierInUse,
    RC::QuotaExceeded,
    RC::SharedSubscriptionsNotSupported,
    RC::SubscriptionIdentifiersNotSupported,
    RC::WildcardSubscriptionsNotSupported,
};

// Table 3-9 Unsubscribe Reason Codes.
constexpr RC kUnsuback[] = {
    RC::Success,
    RC::NoSubscriptionExisted,
    RC::UnspecifiedError,
    RC::ImplementationSpecificError,
    RC::NotAuthorized,
    RC::TopicFilterInvalid,
    RC::PacketIdentifierInUse,
};

// Table 3-10 Disconnect Reason Code values.
constexpr RC kDisconnect[] = {
    RC::NormalDisconnection,
    RC::DisconnectWithWillMessage,
    RC::UnspecifiedError,
    RC::MalformedPacket,
    RC::ProtocolError,
    RC::ImplementationSpecificError,
    RC::NotAuthorized,
    RC::ServerBusy,
    RC::ServerShuttingDown,
    RC::KeepAliveTimeout,
    RC::SessionTakenOver,
    RC::TopicFilterInvalid,
    RC::TopicNameInvalid,
    RC::ReceiveMaximumExceeded,
    RC::TopicAliasInvalid,
    RC::PacketTooLarge,
    RC::MessageRateTooHigh,
    RC::QuotaExceeded,
    RC::AdministrativeAction,
    RC::PayloadFormatInvalid,
    RC::RetainNotSupported,
    RC::QosNotSupported,
    RC::UseAnotherServer,
    RC::ServerMoved,
    RC::SharedSubscriptionsNotSupported,
    RC::ConnectionRateExceeded,
    RC::MaximumConnectTime,
    RC::SubscriptionIdentifiersNotSupported,
    RC::WildcardSubscriptionsNotSupported,
};

// Table 3-11 Authenticate Reason Codes.
constexpr RC kAuth[] = {RC::Success, RC::ContinueAuthentication, RC::ReAuthenticate};

}  // namespace

bool valid_reason_code(PacketType type, ReasonCode code) {
  switch (type) {
    case PacketType::Connack:
      return in(kConnack, code);
    case PacketType::Puback:
    case PacketType::Pubrec:
      return in(kPubackPubrec, code);
    case PacketType::Pubrel:
    case PacketType::Pubcomp:
      return in(kPubrelPubcomp, code);
    case PacketType::Suback:
      return in(kSuback, code);
    case PacketType::Unsuback:
      return in(kUnsuback, code);
    case PacketType::Disconnect:
      return in(kDisconnect, code);
    case PacketType::Auth:
      return in(kAuth, code);
    default:
      return false;
  }
}

ReasonCode to_reason_code(DecodeStatus status) {
  switch (status) {
    case DecodeStatus::Ok:
    case DecodeStatus::NeedMore:
      return ReasonCode::Success;
    case DecodeStatus::Malformed:
      return ReasonCode::MalformedPacket;
    case DecodeStatus::TooLarge:
      return ReasonCode::PacketTooLarge;
    case DecodeStatus::ProtocolError:
      return ReasonCode::ProtocolError;
    case DecodeStatus::BadProtocolVersion:
      return ReasonCode::UnsupportedProtocolVersion;
  }
  return ReasonCode::UnspecifiedError;
}

ConnackCode to_connack_code(ReasonCode code) {
  switch (code) {
    case ReasonCode::Success:
      return ConnackCode::Accepted;
    case ReasonCode::UnsupportedProtocolVersion:
      return ConnackCode::UnacceptableProtocolVersion;
    case ReasonCode::ClientIdentifierNotValid:
      return ConnackCode::IdentifierRejected;
    case ReasonCode::BadUserNameOrPassword:
      return ConnackCode::BadUsernameOrPassword;
    case ReasonCode::NotAuthorized:
      return ConnackCode::NotAuthorized;
    default:
      return ConnackCode::ServerUnavailable;
  }
}

ReasonCode to_reason_code(ConnackCode code) {
  switch (code) {
    case ConnackCode::Accepted:
      return ReasonCode::Success;
    case ConnackCode::UnacceptableProtocolVersion:
      return ReasonCode::UnsupportedProtocolVersion;
    case ConnackCode::IdentifierRejected:
      return ReasonCode::ClientIdentifierNotValid;
    case ConnackCode::BadUsernameOrPassword:
      return ReasonCode::BadUserNameOrPassword;
    case ConnackCode::NotAuthorized:
      return ReasonCode::NotAuthorized;
    case ConnackCode::ServerUnavailable:
      break;
  }
  return ReasonCode::ServerUnavailable;
}

}  // namespace mqtt
