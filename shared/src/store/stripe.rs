//! What the Stripe webhook remembers between events: which user a payment
//! intent belongs to (refunds and disputes name only the payment), and the
//! last applied update of each subscription (updates may arrive out of order).

use super::attr::{KIND, LAST_CREATED, LAST_EVENT, PK, USER_ID};
use super::items::get_s;
use super::keys::{n, payment_key, s, subscription_key};
use super::{classify, Store, StoreError};

impl Store {
    /// Records that `payment_intent` is `user_id`'s; `Ok(Err(..))` when it
    /// is already another user's.
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

    /// The user a payment intent belongs to, if the webhook has seen its purchase.
    pub async fn payment_owner(&self, payment_intent: &str) -> Result<Option<String>, StoreError> {
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .set_key(Some(payment_key(payment_intent)))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        out.item.as_ref().map(|item| get_s(item, USER_ID).map(str::to_owned)).transpose()
    }

    /// Records `event_id` (created at `created`) as the subscription's latest
    /// applied update, unless a later one was applied: `false` then. The
    /// same event again passes, so a retried delivery is applied.
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
            .condition_expression(format!(
                "attribute_not_exists({PK}) OR {LAST_CREATED} < :created OR ({LAST_CREATED} = :created AND {LAST_EVENT} = :event)"
            ))
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
