//! What the Stripe webhook remembers between events: which user a payment
//! intent belongs to (refunds and disputes name only the payment) and, where
//! its checkout was refused, why, and the last applied update of each
//! subscription (updates may arrive out of order).

use super::attr::{KIND, LAST_CREATED, LAST_EVENT, PK, REFUSED, USER_ID};
use super::items::get_s;
use super::keys::{n, payment_key, s, subscription_key};
use super::{classify, Store, StoreError};

/// A payment intent the webhook has seen the checkout of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentOwner {
    /// The user the checkout named.
    pub user_id: String,
    /// The error code the checkout's purchase was refused with: it bought nothing.
    pub refused: Option<String>,
}

impl Store {
    /// Records that `payment_intent` is `user_id`'s (and, written whole, that
    /// its checkout is not refused, or no longer); `Ok(Err(..))` when it is
    /// already another user's.
    pub async fn remember_payment(
        &self,
        payment_intent: &str,
        user_id: &str,
    ) -> Result<Result<(), String>, StoreError> {
        let result = self
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some({
                let mut item = payment_key(payment_intent);
                item.insert(KIND.to_owned(), s("stripe_payment"));
                item.insert(USER_ID.to_owned(), s(user_id));
                item
            }))
            .condition_expression(format!("attribute_not_exists({PK}) OR {USER_ID} = :user"))
            .expression_attribute_values(":user", s(user_id))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Ok(())),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                Ok(Err(format!("payment intent {payment_intent} belongs to another user")))
            }
            Err(e) => Err(classify(e)),
        }
    }

    /// Records why `payment_intent`'s checkout was refused (an error code),
    /// so that a refund or dispute of it is known to have no purchase to
    /// reverse. Nothing where the payment is not `user_id`'s.
    pub async fn refuse_payment(&self, payment_intent: &str, user_id: &str, code: &str) -> Result<(), StoreError> {
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(payment_key(payment_intent)))
            .update_expression(format!("SET {REFUSED} = :code"))
            .condition_expression(format!("{USER_ID} = :user"))
            .expression_attribute_values(":code", s(code))
            .expression_attribute_values(":user", s(user_id))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(()),
            Err(e) => Err(classify(e)),
        }
    }

    /// Whose a payment intent is, if the webhook has seen its checkout.
    pub async fn payment_owner(&self, payment_intent: &str) -> Result<Option<PaymentOwner>, StoreError> {
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .set_key(Some(payment_key(payment_intent)))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        let Some(item) = out.item else { return Ok(None) };
        let user_id = get_s(&item, USER_ID)?.to_owned();
        let refused = item.get(REFUSED).and_then(|v| v.as_s().ok()).cloned();
        Ok(Some(PaymentOwner { user_id, refused }))
    }

    /// Records `event_id` (created at `created`) as the subscription's latest
    /// applied update, unless a later one was applied: `false` then. Stripe
    /// stamps events in whole seconds, so of two in the same second the one
    /// that arrives last is taken for the later (and the same event again
    /// passes, so a retried delivery is applied).
    pub async fn advance_subscription(
        &self,
        subscription_id: &str,
        created: i64,
        event_id: &str,
    ) -> Result<bool, StoreError> {
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(subscription_key(subscription_id)))
            .update_expression(format!("SET {KIND} = :kind, {LAST_CREATED} = :created, {LAST_EVENT} = :event"))
            .condition_expression(format!("attribute_not_exists({PK}) OR {LAST_CREATED} <= :created"))
            .expression_attribute_values(":kind", s("stripe_subscription"))
            .expression_attribute_values(":created", n(created))
            .expression_attribute_values(":event", s(event_id))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(classify(e)),
        }
    }
}
