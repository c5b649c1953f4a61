{#-
  A count that must not be below zero. Missing values pass: the publishers leave cells empty
  and empty is not zero (test not_null separately where a value is required).
  Written here because dbt packages (dbt_utils) cannot be installed offline.
-#}
{% test non_negative(model, column_name) %}
select {{ column_name }}
from {{ model }}
where {{ column_name }} < 0
{% endtest %}
