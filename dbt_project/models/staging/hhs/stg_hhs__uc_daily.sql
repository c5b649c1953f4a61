-- One row per report date: the figures as the newest file (vintage) published them, renamed.
--
-- Choice of row for a date, deterministic:
--   1. the newest vintage that carries the date (a revised figure shows its latest value);
--   2. if two files share that vintage, the greater sha256 (arbitrary but stable);
--   3. if that file lists the date more than once, its first row (lowest source_row);
--      the other rows with different figures are counted in conflicting_copies_in_file.
-- The newest row is taken whole, with its missing values: filling gaps from older vintages
-- would mix files and break the link from each figure to the file it came from.

with source as (

    select * from {{ source('raw', 'hhs_uc_daily') }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by report_date
            order by vintage desc, source_file desc, source_row asc
        ) as copy_rank,
        min(vintage) over (partition by report_date) as first_published_vintage,
        count(distinct source_file) over (partition by report_date) as vintages_with_date
    from source

),

chosen as (

    select * from ranked where copy_rank = 1

),

copies as (

    -- The chosen file's other rows for the same date, compared figure by figure.
    select
        chosen.report_date,
        count(*) as copies_in_file,
        count(*) filter (
            where (
                same_file.apprehended_placed_in_cbp_custody,
                same_file.in_cbp_custody,
                same_file.transferred_out_of_cbp_custody,
                same_file.in_hhs_care,
                same_file.discharged_from_hhs_care
            ) is distinct from (
                chosen.apprehended_placed_in_cbp_custody,
                chosen.in_cbp_custody,
                chosen.transferred_out_of_cbp_custody,
                chosen.in_hhs_care,
                chosen.discharged_from_hhs_care
            )
        ) as conflicting_copies_in_file
    from chosen
    inner join source as same_file
        on same_file.source_file = chosen.source_file
            and same_file.report_date = chosen.report_date
    group by chosen.report_date

),

renamed as (

    select
        chosen.report_date,
        chosen.apprehended_placed_in_cbp_custody as cbp_apprehended_excl_mexico,
        chosen.in_cbp_custody as cbp_in_custody,
        chosen.transferred_out_of_cbp_custody as cbp_transferred_out,
        chosen.in_hhs_care as hhs_in_care,
        chosen.discharged_from_hhs_care as hhs_discharged,
        chosen.source_file,
        chosen.source_row,
        chosen.vintage,
        chosen.first_published_vintage,
        chosen.vintages_with_date,
        copies.copies_in_file,
        copies.conflicting_copies_in_file
    from chosen
    inner join copies using (report_date)

)

select * from renamed
